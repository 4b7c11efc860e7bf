"""The one path from a user's request to images: resolve, validate, run.

Why one service: the CLI, the API, the queue worker and batches used to build requests, resolve
models and check inputs each in their own way. Now each entry point only says where its input
pictures come from (an :class:`InputSource`: local files, or gallery images) and calls
:meth:`GenerationService.resolve` / :meth:`check` before anything is stored, and :meth:`run` when
the work is done. The order in which values are chosen is fixed here, once:

    the user's fields > preset > style > the model's own defaults > the request's generic defaults

Model names resolve in one place too (:class:`RegisteredName` from the model registry): a
registered base model is an alias for its weights; a registered LoRA means "its base model with this
LoRA". A registered name wins over a same-named folder in the working directory (write ``./dogs``
for the folder).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.progress import CancelToken, ProgressCallback, ignore_progress
from limner.core.providers import split_provider
from limner.core.records import GenerationResult
from limner.core.requests import HIRES_LANCZOS, HIRES_LATENT, GenerationRequest, LoraSpec, Task
from limner.engines.base import Engine, TaskInputs
from limner.engines.local.model_refs import BUILTIN_CONTROLS, BUILTIN_MODELS
from limner.engines.local.single_file_configs import family_model_id
from limner.model_defaults import ModelDefaults, load_model_defaults
from limner.presets import Preset, load_presets, request_from_fields
from limner.prompts.wildcards import WildcardLibrary
from limner.services.preset_fallback import Fallback, preset_fallback
from limner.services.prompt_choices import check_prompt_choices, run_with_choices
from limner.styles import apply_style, load_styles


@dataclass(frozen=True)
class RegisteredName:
    """What the model registry knows of a name: its weights, and for a LoRA the base it was trained on."""

    name: str
    reference: str
    is_lora: bool = False
    base_model: str | None = None
    owner_id: str | None = None
    shared: bool = True
    files_key: str | None = None  # the weights packed in the shared file store (for machines without them)
    files_path: str | None = None  # the reference inside that packed folder

    def visible_to(self, user_id: str | None) -> bool:
        """Shared models are everyone's; a private one is its owner's (``user_id`` None: no restriction)."""
        return user_id is None or self.shared or self.owner_id == user_id


ModelLookup = Callable[[str], RegisteredName | None]

SIZE_FROM_INPUT = frozenset(task.value for task in Task if task.size_from_input)
"""Tasks whose output size follows the input picture: a model's default size is not filled in for them."""

_TUNED_TO_PRESET_MODEL = ("steps", "guidance_scale", "image_guidance_scale", "scheduler", "width", "height")
"""Preset values dropped when a stand-in replaces the preset's model (they were tuned for that model)."""

REGISTERED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def could_be_registered(name: str) -> bool:
    """Whether ``name`` has the form of a registered model's name (not a path, hub id or built-in)."""
    return name not in BUILTIN_MODELS and REGISTERED_NAME.match(name) is not None


_HUB_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HUB_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*\.safetensors$")
REFUSED_REFERENCE = (
    "is not a model you can use here: name a registered model (see GET /v1/models), a built-in model "
    "or a hub id like 'owner/name'"
)


@dataclass(frozen=True)
class ModelAccess:
    """Which weights a caller may name. The CLI and admins may name files and folders on this machine;
    other API users only registered names, built-ins, remote providers and hub ids (optionally only
    those of ``hub_allowlist``). A refused reference gets one message whatever exists at that path,
    so the answer tells nothing about the server's disk."""

    allow_paths: bool = True
    hub_allowlist: frozenset[str] | None = None
    user_id: str | None = None
    """A user who sees only shared registered models and their own (None: every registered model)."""

    def check(self, reference: str, param: str, lookup: ModelLookup, *, weights_file: bool = False) -> None:
        if self.allow_paths or reference in BUILTIN_MODELS:
            return
        entry = lookup(reference)
        if entry is not None and entry.visible_to(self.user_id):
            return
        if split_provider(reference)[0] is not None:
            return
        hub_shaped = _HUB_MODEL.match(reference) or (weights_file and _HUB_FILE.match(reference))
        if hub_shaped and ".." not in reference:
            repo = "/".join(reference.split("/")[:2])
            if self.hub_allowlist is None or repo in self.hub_allowlist:
                return
            raise InvalidRequestError(f"{reference!r} is not among the hub models this server allows", param=param)
        raise InvalidRequestError(f"{reference[:80]!r} {REFUSED_REFERENCE}", param=param)


LOCAL_ACCESS = ModelAccess()


def api_access(settings: Settings, user_id: str, is_admin: bool) -> ModelAccess:
    """What an API user may name: admins everything; others no paths, their own and shared registered
    models, and hub ids (from the allow-list if one is set)."""
    if is_admin:
        return ModelAccess()
    allowlist = frozenset(settings.hub_model_allowlist) if settings.hub_model_allowlist is not None else None
    return ModelAccess(allow_paths=False, hub_allowlist=allowlist, user_id=user_id)


def no_registered_models(_: str) -> RegisteredName | None:
    """The lookup of a setting with no model registry (no local store yet)."""
    return None


class InputSource(Protocol):
    """Where a request's pictures come from, and where a saved character's new embeddings go."""

    def task_inputs(self, request: GenerationRequest, *, decode: bool = True) -> TaskInputs:
        """The request's pictures (and saved character). ``decode=False``: only what validation needs."""
        ...

    def remember_character(self, name: str, computed: Mapping[str, Any]) -> None:
        """Keep embeddings computed for a saved character, so later runs skip the image encoder."""
        ...


class NoInputs:
    """The input source of a request that takes no pictures (batch items, prompt-only jobs)."""

    def task_inputs(self, request: GenerationRequest, *, decode: bool = True) -> TaskInputs:
        return TaskInputs()

    def remember_character(self, name: str, computed: Mapping[str, Any]) -> None:
        return None


class GenerationService:
    """Resolves user requests into validated, fully specified requests and runs them on the engine."""

    def __init__(self, settings: Settings, engine: Engine, lookup: ModelLookup = no_registered_models) -> None:
        self._settings = settings
        self._engine = engine
        self._lookup = lookup
        self._wildcards = WildcardLibrary.with_user_folder(settings.wildcards_dir)
        self._defaults_table: tuple[tuple[int, int] | None, dict[str, ModelDefaults]] | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def settings(self) -> Settings:
        return self._settings

    def presets(self) -> dict[str, Preset]:
        return load_presets(self._settings.presets_file)

    def resolve(
        self, fields: Mapping[str, Any], preset: str | None = None, access: ModelAccess = LOCAL_ACCESS
    ) -> GenerationRequest:
        """User fields (None = unset) -> a validated request with every default chosen and recorded.

        ``access`` applies to what the user typed; presets and styles are the server's own configuration.
        """
        merged = {key: value for key, value in fields.items() if value is not None}
        self._check_access(merged, access)
        if preset:
            chosen = self._preset(preset)
            fallback = self.preset_fallback(merged, preset)
            if fallback is not None:
                # The preset's numbers were tuned for its own model; the stand-in's defaults apply instead.
                tuned = dict.fromkeys(_TUNED_TO_PRESET_MODEL)
                chosen = chosen.model_copy(update={"model": fallback.model, **tuned})
            merged = chosen.apply(merged)
        if merged.get("style"):
            merged = apply_style(merged, load_styles(self._settings.styles_file))
        merged = self._resolve_model(merged)
        filled = self.defaults_for(str(merged["model"])).fill(merged)
        if str(merged.get("task", "")) in SIZE_FROM_INPUT and merged.get("width") is None:
            filled = {key: value for key, value in filled.items() if key not in ("width", "height")}
        merged = filled
        request = request_from_fields(merged)
        request.check_limits(self._settings.request_limits())
        return request

    def check(self, request: GenerationRequest, source: InputSource) -> None:
        """Every check that needs no weights (model reference, inputs, sizes), before a job is stored."""
        self._engine.validate(request, source.task_inputs(request, decode=False))
        check_prompt_choices(request, self._wildcards, self._settings.request_limits())

    def prepare(
        self,
        fields: Mapping[str, Any],
        preset: str | None = None,
        source: InputSource | None = None,
        access: ModelAccess = LOCAL_ACCESS,
    ) -> GenerationRequest:
        """:meth:`resolve` then :meth:`check`: what an entry point does before it queues or runs."""
        request = self.resolve(fields, preset, access)
        self.check(request, source or NoInputs())
        return request

    def run(
        self,
        request: GenerationRequest,
        source: InputSource | None = None,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        """Generate; a saved character's newly computed embeddings are handed back to its store."""
        source = source or NoInputs()
        result = run_with_choices(self._engine, request, source.task_inputs(request), self._wildcards,
                                  self._settings.request_limits(), progress, cancel or CancelToken())  # fmt: skip
        if request.character and result.reference_embeddings:
            source.remember_character(request.character, result.reference_embeddings)
        return result

    def preset_fallback(self, fields: Mapping[str, Any], preset: str | None) -> Fallback | None:
        """The built-in edit model that stands in for an edit preset's hub model that cannot be had here
        (not cached, no download possible), with the note to show; None when the preset's model is used."""
        if not preset:
            return None
        return preset_fallback(self._preset(preset), fields, self._settings.default_edit_model)

    def warm_up(self) -> None:
        """One short run of the default model at its default size, so that compiling (``LIMNER_COMPILE``)
        happens before the first user's job rather than during it."""
        self.run(self.resolve({"prompt": "warm-up", "steps": 2, "seed": 0}))

    def defaults_for(self, model: str) -> ModelDefaults:
        """The model's tuned settings; a registered model uses those of its weights or base model, and a
        single-file checkpoint those of its family's model (``stabilityai/sd-turbo`` for an SD-Turbo file)."""
        table = self._model_defaults()
        seen: set[str] = set()
        name: str | None = model
        while name is not None and name not in seen:
            if name in table:
                return table[name]
            seen.add(name)
            entry = self._lookup(name)
            weights = None if entry is None else (entry.base_model if entry.is_lora else entry.reference)
            name = family_model_id(name) if entry is None else weights
        return ModelDefaults(name=model)

    def _model_defaults(self) -> dict[str, ModelDefaults]:
        """The defaults table, parsed again only when the user's file changed (size, modification time):
        every request reads it, and parsing the TOML was most of the time a request took to validate."""
        path = self._settings.model_defaults_file
        stat = path.stat() if path is not None and path.is_file() else None
        version = (stat.st_mtime_ns, stat.st_size) if stat is not None else None
        if self._defaults_table is None or self._defaults_table[0] != version:
            self._defaults_table = (version, load_model_defaults(path))  # a missing file raises every time
        return self._defaults_table[1]

    def _check_access(self, fields: Mapping[str, Any], access: ModelAccess) -> None:
        if fields.get("model"):
            access.check(str(fields["model"]), "model", self._lookup)
        for lora in fields.get("loras") or []:
            ref = lora.ref if isinstance(lora, LoraSpec) else str(dict(lora).get("ref", ""))
            access.check(ref, "loras", self._lookup, weights_file=True)
        if fields.get("ip_adapter"):
            access.check(str(fields["ip_adapter"]), "ip_adapter", self._lookup, weights_file=True)
        for control in fields.get("controls") or []:
            model = control.get("model") if isinstance(control, Mapping) else getattr(control, "model", None)
            if model and model not in BUILTIN_CONTROLS:
                access.check(str(model), "controls", self._lookup)
        for embedding in fields.get("embeddings") or []:
            access.check(str(embedding), "embeddings", self._lookup, weights_file=True)
        if fields.get("upscaler"):
            access.check(str(fields["upscaler"]), "upscaler", self._lookup, weights_file=True)
        if fields.get("hires_upscaler") and str(fields["hires_upscaler"]) not in (HIRES_LATENT, HIRES_LANCZOS):
            access.check(str(fields["hires_upscaler"]), "hires_upscaler", self._lookup, weights_file=True)

    def _preset(self, name: str) -> Preset:
        presets = self.presets()
        preset = presets.get(name)
        if preset is None:
            known = ", ".join(sorted(presets)) or "none"
            raise InvalidRequestError(f"unknown preset {name!r} (known: {known})", param="preset")
        return preset

    def _resolve_model(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Record the model used; a registered LoRA name becomes its base model plus that LoRA."""
        settings = self._settings
        default = settings.default_edit_model if str(fields.get("task")) == "edit" else settings.default_model
        name = str(fields.get("model") or default)
        entry = self._lookup(name)
        if entry is not None and entry.is_lora:
            loras = [LoraSpec(ref=entry.name), *fields.get("loras", [])]
            return {**fields, "model": entry.base_model or self._settings.default_model, "loras": loras}
        return {**fields, "model": name}


def registered_aliases(
    lookup: ModelLookup, local_copy: Callable[[RegisteredName], str] | None = None
) -> Callable[[str], str | None]:
    """The engine's view of the registry: a registered name -> its weights reference.

    ``local_copy`` turns an entry into a reference this machine can load (unpacking the weights from
    the shared file store where another machine trained or imported them).
    """

    def alias(name: str) -> str | None:
        entry = lookup(name)
        if entry is None:
            return None
        return local_copy(entry) if local_copy is not None else entry.reference

    return alias
