"""What this server can do for one user: tasks per model, characters, styles, presets, providers.

Why its own answer: the studio (and any client) used to offer every task and find out after a job
was queued that the default model cannot edit or that no IP-Adapter is configured. Everything here
is decided from configuration files only (``model_index.json``, ``unet/config.json``, settings,
the preset and style tables, the hub cache), never by loading weights, so the answer is cheap
enough for every page load. A missing capability comes with a sentence saying what to do; the
sentences name no settings variable, key or server path (they are read by people who use, not run,
the server).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from limner.config import Settings
from limner.core.errors import LimnerError
from limner.core.providers import PROVIDERS, split_provider
from limner.core.requests import Task
from limner.db.models import ModelKind, RegisteredModel
from limner.engines.local.model_refs import BUILTIN_MODELS, builtin_model_path
from limner.engines.local.single_file_configs import family_allows, family_of_file, shipped_config_root
from limner.model_defaults import ModelDefaults
from limner.presets import Preset
from limner.styles import Style

SD_TASKS = ("txt2img", "img2img", "inpaint")
TASKS = (*SD_TASKS, "edit", "character")
# Pipelines that take a picture plus an instruction (kept in step with engines/local/tasks.py,
# which imports diffusers; this module must stay light).
EDIT_PIPELINES = frozenset(
    {
        "StableDiffusionInstructPix2PixPipeline",
        "StableDiffusionXLInstructPix2PixPipeline",
        "FluxKontextPipeline",
        "QwenImageEditPipeline",
        "QwenImageEditPlusPipeline",
    }
)
_EDIT_CHANNELS = 8
_INPAINT_CHANNELS = 9
_CHARACTER_PROVIDER = "replicate"  # the remote InstantCharacter preset runs there

EDIT_MISSING = (
    "No model on this server can edit pictures by instruction. Ask an administrator to install an "
    "InstructPix2Pix-class model (for example instruction-tuning-sd/cartoonizer); until then, use "
    "img2img or inpaint on the Generate page."
)
CHARACTER_MISSING = (
    "Characters need an IP-Adapter, and this server has none set up and no remote provider for them. "
    "Ask an administrator to add an IP-Adapter (or a Replicate key); until then, use img2img with "
    "your reference picture on the Generate page."
)
PROVIDERS_MISSING = "No remote provider is set up on this server: every picture is made on the server itself."


@dataclass(frozen=True)
class ModelCapabilities:
    """One model a user can pick, and the tasks it runs (``checked``: read from its config files)."""

    name: str
    kind: str
    family: str
    tasks: tuple[str, ...]
    default: bool = False
    base_model: str | None = None
    checked: bool = True
    note: str = ""
    width: int | None = None  # the size it makes when none is asked for (its defaults, else its native size)
    height: int | None = None
    steps: int | None = None


@dataclass(frozen=True)
class Offer:
    """A preset or style: whether it can run here, and if not, why (a sentence for a person)."""

    name: str
    description: str
    available: bool
    task: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Missing:
    capability: str
    reason: str


@dataclass(frozen=True)
class Capabilities:
    default_model: str
    models: tuple[ModelCapabilities, ...]
    tasks: dict[str, bool]
    providers: tuple[str, ...]
    character_adapter: bool
    presets: tuple[Offer, ...]
    styles: tuple[Offer, ...]
    loras: tuple[str, ...]
    missing: tuple[Missing, ...] = field(default=())


@dataclass(frozen=True)
class _Shape:
    family: str
    tasks: tuple[str, ...]
    checked: bool
    native: int | None = None  # the UNet's sample size in pixels (latent side x 8)


DefaultsOf = Callable[[str], ModelDefaults]


def _no_defaults(name: str) -> ModelDefaults:
    return ModelDefaults(name=name)


def server_capabilities(
    settings: Settings,
    registered: Sequence[RegisteredModel],
    presets: dict[str, Preset],
    styles: dict[str, Style],
    defaults: DefaultsOf = _no_defaults,
) -> Capabilities:
    """The whole answer for the models ``registered`` (those the user may see); ``defaults`` gives
    a model's tuned settings (the generation service's table)."""
    providers = tuple(name for name, provider in PROVIDERS.items() if settings.provider_key(provider) is not None)
    adapter = bool(settings.ip_adapter)
    by_name = {model.name: model for model in registered}
    models = [_sized(_default_model(settings, adapter), defaults(settings.default_model), settings.default_model)]
    # The edit default is not listed among the models (pickers offer those for every task); it makes
    # edits available, and runs an edit preset whose hub model is missing offline.
    edit_model = _default_edit_model(settings)
    models += [
        _sized(_registered(model, by_name, settings, adapter), defaults(model.name), model.reference)
        for model in registered
    ]
    edit_presets = [preset for preset in presets.values() if preset.task is not None and preset.task.value == "edit"]
    preset_offers = tuple(_preset_offer(preset, providers, by_name, edit_model) for preset in presets.values())
    usable_edit_preset = any(offer.available for offer in preset_offers if offer.name in {p.name for p in edit_presets})
    remote_character = _CHARACTER_PROVIDER in providers
    tasks = {task: any(task in model.tasks for model in models) for task in TASKS}
    tasks["edit"] = tasks["edit"] or usable_edit_preset or edit_model is not None
    tasks["character"] = tasks["character"] or remote_character
    missing = [Missing(task, _missing_reason(task)) for task in ("edit", "character") if not tasks[task]]
    if not providers:
        missing.append(Missing("providers", PROVIDERS_MISSING))
    return Capabilities(
        default_model=models[0].name,
        models=tuple(models),
        tasks=tasks,
        providers=providers,
        character_adapter=adapter,
        presets=preset_offers,
        styles=tuple(_style_offer(style) for style in styles.values()),
        loras=tuple(model.name for model in registered if model.kind == ModelKind.LORA.value),
        missing=tuple(missing),
    )


def _sized(model: ModelCapabilities, tuned: ModelDefaults, reference: str) -> ModelCapabilities:
    """Add the size and steps a request without them gets: the model's tuned ones, else its native size."""
    native = model_shape(reference).native if not (tuned.width and tuned.height) else None
    width = tuned.width or native
    height = tuned.height or native
    return replace(model, width=width, height=height, steps=tuned.steps)


def _missing_reason(task: str) -> str:
    return EDIT_MISSING if task == "edit" else CHARACTER_MISSING


def _with_character(tasks: tuple[str, ...], adapter: bool) -> tuple[str, ...]:
    """An IP-Adapter conditions text-to-image, so any model that draws from text can take one."""
    return (*tasks, "character") if adapter and "txt2img" in tasks else tasks


def _default_model(settings: Settings, adapter: bool) -> ModelCapabilities:
    reference = settings.default_model
    shape = model_shape(reference)
    name = Path(reference).name if _is_path(reference) else reference
    return ModelCapabilities(
        name, "base", shape.family, _with_character(shape.tasks, adapter), default=True, checked=shape.checked
    )


def _default_edit_model(settings: Settings) -> str | None:
    """The name of the model edits use when a request names none (limner-tiny-edit), when it can edit."""
    reference = settings.default_edit_model
    if reference == settings.default_model:
        return None
    shape = model_shape(reference)
    if not shape.checked or "edit" not in shape.tasks:
        return None
    return Path(reference).name if _is_path(reference) else reference


def _registered(
    model: RegisteredModel, by_name: dict[str, RegisteredModel], settings: Settings, adapter: bool
) -> ModelCapabilities:
    base_reference = model.reference
    base_name = None
    if model.kind == ModelKind.LORA.value:
        base_name = model.base_model or settings.default_model
        base_reference = by_name[base_name].reference if base_name in by_name else base_name
    shape = model_shape(base_reference)
    note = "a LoRA: its base model with this LoRA applied" if base_name else ""
    shown_base = Path(base_name).name if base_name and _is_path(base_name) else base_name
    return ModelCapabilities(
        model.name,
        model.kind,
        model.architecture if model.architecture != "unknown" else shape.family,
        _with_character(shape.tasks, adapter),
        base_model=shown_base,
        checked=shape.checked,
        note=note,
    )


def model_shape(reference: str) -> _Shape:
    """Family and tasks of a model reference, from its config files (a folder, or the hub cache)."""
    if split_provider(reference)[0] is not None:
        return _Shape("remote", ("txt2img",), False)
    folder = builtin_model_path(reference) if reference in BUILTIN_MODELS else Path(reference).expanduser()
    if folder.is_dir():
        return _shape_of(_read_json(folder / "model_index.json"), _read_json(folder / "unet" / "config.json"))
    if folder.suffix.lower() == ".safetensors":
        return _single_file_shape(folder)
    index = _cached(reference, "model_index.json")
    if index is None:
        return _Shape("unknown", SD_TASKS, False)
    return _shape_of(index, _cached(reference, "unet/config.json"))


def _single_file_shape(path: Path) -> _Shape:
    """Family, tasks and native size of a single-file checkpoint: its safetensors header names its family
    (no weight is read), whose shipped configs say the rest, less what the family cannot do (an inpainting
    file only inpaints, an SDXL refiner only refines pictures), as the engine enforces."""
    try:
        choice = family_of_file(path) if path.is_file() else None
    except (OSError, ValueError, LimnerError):
        choice = None
    if choice is None:
        return _Shape("sd", SD_TASKS, False)  # SD-shaped unless its header says otherwise
    folder = shipped_config_root() / choice.family
    shape = _shape_of(_read_json(folder / "model_index.json"), _read_json(folder / "unet" / "config.json"))
    tasks = tuple(task for task in shape.tasks if family_allows(choice.family, Task(task)))
    return replace(shape, tasks=tasks, native=shape.native if choice.hinted else None)


def _shape_of(index: dict[str, Any] | None, unet: dict[str, Any] | None) -> _Shape:
    class_name = str((index or {}).get("_class_name", ""))
    family = _family(class_name)
    channels = (unet or {}).get("in_channels")
    sample = (unet or {}).get("sample_size")
    native = sample * 8 if isinstance(sample, int) else None
    if class_name in EDIT_PIPELINES or channels == _EDIT_CHANNELS:
        return _Shape(family, ("edit",), index is not None, native)
    if channels == _INPAINT_CHANNELS or "Inpaint" in class_name:
        return _Shape(family, ("inpaint",), index is not None, native)
    return _Shape(family, SD_TASKS, index is not None, native)


def _family(class_name: str) -> str:
    for marker, family in (("XL", "sdxl"), ("Flux", "flux"), ("StableDiffusion3", "sd3"), ("StableDiffusion", "sd")):
        if marker in class_name:
            return family
    return "unknown"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _cached(repo_id: str, filename: str) -> dict[str, Any] | None:
    """A config file of a hub model, from the local hub cache only (never the network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(repo_id, filename)
    except ValueError:  # not a valid repo id
        return None
    return _read_json(Path(path)) if isinstance(path, str) else None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _reachable(reference: str, providers: Sequence[str], by_name: dict[str, RegisteredModel]) -> str:
    """Empty when the model can be used now (or fetched on first use); else why not."""
    provider, _ = split_provider(reference)
    if provider is not None:
        if provider in providers:
            return ""
        return f"it runs on {PROVIDERS[provider].display_name}, which is not set up on this server."
    if reference in by_name or reference in BUILTIN_MODELS or Path(reference).expanduser().exists():
        return ""
    if _cached(reference, "model_index.json") is not None or not _hub_offline():
        return ""
    return (
        f"its model ({reference}) is not installed and this server works offline; ask an administrator to install it."
    )


def _preset_offer(
    preset: Preset, providers: Sequence[str], by_name: dict[str, RegisteredModel], edit_stand_in: str | None = None
) -> Offer:
    """Whether the preset runs here; an edit preset whose hub model is missing offline runs on the edit default
    (the generation service makes the same substitution, see ``services.preset_fallback``)."""
    reason = _reachable(preset.model, providers, by_name) if preset.model else ""
    task = preset.task.value if preset.task is not None else None
    if reason and task == "edit" and edit_stand_in and split_provider(preset.model or "")[0] is None:
        note = f"Its model ({preset.model}) is not installed here; it runs on {edit_stand_in} instead."
        return Offer(preset.name, preset.description, True, task, note)
    return Offer(preset.name, preset.description, not reason, task, f"Not available: {reason}" if reason else "")


def _style_offer(style: Style) -> Offer:
    """A prompt-only style always works; a LoRA style needs its file installed (the engine never fetches it)."""
    lora = style.lora
    if not lora:
        return Offer(style.name, style.description, True)
    parts = lora.split("/")
    local = Path(lora).expanduser().exists()
    cached = len(parts) > 2 and _cached("/".join(parts[:2]), "/".join(parts[2:])) is not None
    if local or cached:
        family = f" It fits {style.base} models." if style.base else ""
        return Offer(style.name, style.description, True, reason=family.strip())
    return Offer(
        style.name,
        style.description,
        False,
        reason="Not available: its LoRA is not installed on this server; ask an administrator to install it.",
    )


def _is_path(reference: str) -> bool:
    return reference.startswith(("/", ".", "~")) or reference.endswith(".safetensors") or os.sep in reference[:1]
