"""Control: guide composition with control pictures through ControlNets and T2I-Adapters.

Why this shape: a ControlNet or T2I-Adapter is a small extra model beside the base model; diffusers'
control pipelines take the base model's modules plus the control model. ``from_pipe`` builds them
around the very modules of the loaded base pipeline (no second copy of the UNet, VAE or text
encoders), and the control models are cached here like base models, so a switch between plain and
controlled runs loads nothing and copies no tensor. Several controls run at once (diffusers'
``MultiControlNetModel`` / ``MultiAdapter``), each with its own weight and step range.

Control models are loaded from safetensors only: a diffusers folder, a hub id (``owner/name`` or
``owner/name/subfolder``) or a single ``.safetensors`` ControlNet file. Which kind a model is
(ControlNet or T2I-Adapter) is read from its own config, never from its name.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from PIL import Image

from limner.core.errors import (
    InvalidRequestError,
    ModelDownloadError,
    ModelNotFoundError,
    UnsafeModelFormatError,
    UnsupportedTaskError,
    first_line,
)
from limner.core.requests import MAX_CONTROLS, ControlSpec, ControlType, GenerationRequest, Task
from limner.engines.local.device import Placement
from limner.engines.local.model_refs import (
    BUILTIN_CONTROLS,
    PICKLE_SUFFIXES,
    SourceKind,
    builtin_model_path,
    check_weights_file,
)
from limner.engines.local.small_cache import SmallModuleCache
from limner.engines.local.tasks import DerivedPipelines, call_parameters, derive_pipeline, supported_tasks
from limner.imaging.control_preprocess import POSE_REFUSAL, DepthEstimator, preprocess

_HUB_PART = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_AUTO_PIPELINES = {
    Task.TXT2IMG: "AutoPipelineForText2Image",
    Task.IMG2IMG: "AutoPipelineForImage2Image",
    Task.INPAINT: "AutoPipelineForInpainting",
}
_CONTROLNET_CLASSES = frozenset({"ControlNetModel"})
_ADAPTER_CLASSES = frozenset({"T2IAdapter"})


class ControlKind(StrEnum):
    CONTROLNET = "controlnet"
    ADAPTER = "t2i_adapter"


@dataclass(frozen=True)
class ControlSource:
    """Where a control model's weights are; ``name`` is what messages show."""

    kind: SourceKind
    location: str
    name: str
    subfolder: str | None = None


def resolve_control_model(ref: str) -> ControlSource:
    """A built-in name, a folder with ``config.json``, a ``.safetensors`` ControlNet file, or ``owner/name[/sub]``."""
    if ref in BUILTIN_CONTROLS:
        folder = builtin_model_path(ref)
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(
                f"the built-in control model {ref!r} is not present in this installation (expected {folder})",
                param="controls",
            )
        return ControlSource(SourceKind.FOLDER, str(folder), ref)
    path = Path(ref).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeModelFormatError(
            f"control model {path.name}: {path.suffix} files are pickles and are refused; use .safetensors",
            param="controls",
        )
    if _exists(path, "is_dir"):
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{ref} is a folder but not a diffusers ControlNet or T2I-Adapter (no config.json in it)",
                param="controls",
            )
        return ControlSource(SourceKind.FOLDER, str(path.resolve()), path.name)
    if path.suffix.lower() == ".safetensors":
        if not _exists(path, "is_file"):
            raise ModelNotFoundError(f"no such control model file: {ref}", param="controls")
        check_weights_file(path, param="controls")
        return ControlSource(SourceKind.SINGLE_FILE, str(path.resolve()), path.stem)
    parts = ref.split("/")
    if 2 <= len(parts) <= 3 and all(re.fullmatch(_HUB_PART, part) for part in parts) and ".." not in parts:
        return ControlSource(SourceKind.HUB, "/".join(parts[:2]), ref, parts[2] if len(parts) == 3 else None)
    raise ModelNotFoundError(
        f"control model {ref!r} is neither an existing folder or .safetensors file nor a hub id like "
        "'owner/name' or 'owner/name/subfolder'",
        param="controls",
    )


def check_controls(
    request: GenerationRequest,
    images: Sequence[Any],
    depth_model: str | None,
    aliases: Callable[[str], str | None],
) -> tuple[ControlSource, ...]:
    """Every control check that needs no weights; the resolved model of each control."""
    if len(images) != len(request.controls):
        raise InvalidRequestError(
            f"{len(request.controls)} controls but {len(images)} control pictures could be loaded", param="controls"
        )
    sources = []
    for number, spec in enumerate(request.controls, start=1):
        if spec.type is ControlType.POSE:
            raise InvalidRequestError(POSE_REFUSAL, param="controls")
        if spec.type is ControlType.DEPTH and not depth_model:
            raise InvalidRequestError(
                "depth control needs a depth estimator: set LIMNER_DEPTH_MODEL to a hub id (e.g. "
                "Intel/dpt-hybrid-midas) or a local folder (safetensors), or pass a ready depth map with type none",
                param="controls",
            )
        if not spec.model:
            raise InvalidRequestError(
                f"control {number} ({spec.image.label}) names no model: give a ControlNet or T2I-Adapter "
                "(--control-model, or the control's model field): a hub id, a folder or a .safetensors file",
                param="controls",
            )
        sources.append(resolve_control_model(aliases(spec.model) or spec.model))
    return tuple(sources)


def control_kind(module: Any) -> ControlKind:
    """Whether a loaded control model is a ControlNet or a T2I-Adapter."""
    return ControlKind.ADAPTER if type(module).__name__ in _ADAPTER_CLASSES else ControlKind.CONTROLNET


class ControlModels:
    """The control models (and the depth estimator) of one engine, loaded once, least recently used dropped first."""

    def __init__(self, placement: Placement, depth_model: str | None = None, capacity: int = MAX_CONTROLS) -> None:
        self._placement = placement
        self._depth_model = depth_model
        self._loaded: SmallModuleCache[ControlSource, Any] = SmallModuleCache(capacity)
        self._depth: DepthEstimator | None = None
        self._lock = threading.Lock()  # guards the depth estimator's first load

    def get(self, source: ControlSource) -> Any:
        """The loaded ControlNet / T2I-Adapter of ``source`` (loading it on first use)."""
        return self._loaded.get(source, lambda: _load(source, self._placement))

    def loaded(self) -> list[str]:
        return [source.name for source in self._loaded.loaded_keys()]

    def prepare(self, specs: Sequence[ControlSpec], images: Sequence[Any], size: tuple[int, int] | None) -> list[Any]:
        """Each control picture preprocessed (edges, depth ...) at the output size."""
        depth = self._depth_estimator() if any(spec.type is ControlType.DEPTH for spec in specs) else None
        return [preprocess(image, spec, size, depth) for spec, image in zip(specs, images, strict=True)]

    def _depth_estimator(self) -> DepthEstimator:
        with self._lock:
            if self._depth is None:
                if not self._depth_model:
                    raise InvalidRequestError("depth control needs LIMNER_DEPTH_MODEL", param="controls")
                self._depth = _load_depth_estimator(self._depth_model, self._placement)
            return self._depth


def control_pipeline(
    base: Any,
    task: Task,
    scheduler: Any,
    modules: Sequence[Any],
    model_name: str,
    derived: DerivedPipelines | None = None,
) -> Any:
    """The control pipeline for ``task`` around ``base``'s own modules (``from_pipe``: nothing is copied)."""
    kinds = {control_kind(module) for module in modules}
    if len(kinds) > 1:
        raise InvalidRequestError(
            "ControlNets and T2I-Adapters cannot be mixed in one request; use models of one kind", param="controls"
        )
    tasks = supported_tasks(base)
    if task not in tasks:
        can = ", ".join(sorted(t.value for t in tasks))
        raise UnsupportedTaskError(f"model {model_name} cannot do {task.value}; it can do: {can}", param="task")
    import diffusers

    if kinds == {ControlKind.ADAPTER}:
        if task is not Task.TXT2IMG:
            raise UnsupportedTaskError(
                "T2I-Adapters guide text-to-image only (diffusers has no adapter img2img/inpaint pipeline); "
                "use a ControlNet for img2img and inpaint",
                param="controls",
            )
        xl = "XL" in type(base).__name__
        pipeline_class = diffusers.StableDiffusionXLAdapterPipeline if xl else diffusers.StableDiffusionAdapterPipeline
        adapter = modules[0] if len(modules) == 1 else diffusers.MultiAdapter(list(modules))
        pipeline = _derive(pipeline_class, base, model_name, derived, adapter=adapter, scheduler=scheduler)
    else:
        controlnet = modules[0] if len(modules) == 1 else list(modules)
        auto_pipeline = getattr(diffusers, _AUTO_PIPELINES[task])
        pipeline = _derive(auto_pipeline, base, model_name, derived, controlnet=controlnet, scheduler=scheduler)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def control_arguments(pipeline: Any, request: GenerationRequest, images: Sequence[Any]) -> dict[str, Any]:
    """The control arguments of the pipeline call: pictures, weights, step ranges, guess mode."""
    specs = request.controls
    several = len(specs) > 1

    def each(values: list[Any]) -> Any:
        return values if several else values[0]

    image_key = "image" if request.task is Task.TXT2IMG else "control_image"
    arguments: dict[str, Any] = {image_key: each(list(images))}
    weights = [spec.weight for spec in specs]
    if getattr(pipeline, "adapter", None) is None:
        arguments["controlnet_conditioning_scale"] = each(weights)
        arguments["control_guidance_start"] = each([spec.start for spec in specs])
        arguments["control_guidance_end"] = each([spec.end for spec in specs])
        arguments["guess_mode"] = request.guess_mode
        return arguments
    if request.guess_mode:
        raise InvalidRequestError("guess_mode is for ControlNets; T2I-Adapters have none", param="guess_mode")
    if any(spec.start > 0 for spec in specs):
        raise InvalidRequestError("a T2I-Adapter acts from the first step: leave its start at 0", param="controls")
    ends = {spec.end for spec in specs}
    accepts_factor = "adapter_conditioning_factor" in call_parameters(pipeline)
    if ends != {1.0} and not (accepts_factor and len(ends) == 1):
        raise InvalidRequestError(
            "this T2I-Adapter pipeline applies adapters over every step"
            + (" (one end for all adapters)" if accepts_factor else "; leave end at 1"),
            param="controls",
        )
    if accepts_factor:
        arguments["adapter_conditioning_factor"] = ends.pop()
    arguments["adapter_conditioning_scale"] = each(weights)
    return arguments


def with_legacy_callback(pipeline: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """Step progress and cancel for pipelines that still take the old ``callback(step, t, latents)``
    (diffusers' T2I-Adapter pipelines), through the same step-end function as every other pipeline."""
    parameters = call_parameters(pipeline)
    on_step_end = arguments.get("callback_on_step_end")
    if on_step_end is None or "callback_on_step_end" in parameters or "callback" not in parameters:
        return arguments

    def callback(step: int, timestep: Any, latents: Any) -> None:
        on_step_end(pipeline, step, timestep, {"latents": latents})

    return {**arguments, "callback": callback, "callback_steps": 1}


def _derive(pipeline_class: Any, base: Any, model_name: str, derived: DerivedPipelines | None, **parts: Any) -> Any:
    try:
        return derive_pipeline(pipeline_class, base, derived, **parts)
    except (ValueError, TypeError) as exc:
        raise UnsupportedTaskError(
            f"model {model_name} ({type(base).__name__}) has no control pipeline in diffusers: {first_line(exc)[:200]}",
            param="controls",
        ) from exc


def _load(source: ControlSource, placement: Placement) -> Any:
    import diffusers

    try:
        if source.kind is SourceKind.SINGLE_FILE:
            module = _load_single_file(Path(source.location), placement)
        else:
            config = _config(source)
            class_name = str(config.get("_class_name", ""))
            if class_name not in _CONTROLNET_CLASSES | _ADAPTER_CLASSES:
                raise InvalidRequestError(
                    f"{source.name} is a {class_name or 'model of unknown class'}, not a ControlNet or T2I-Adapter",
                    param="controls",
                )
            kwargs: dict[str, Any] = {"torch_dtype": placement.dtype, "use_safetensors": True}
            if source.subfolder:
                kwargs["subfolder"] = source.subfolder
            module = getattr(diffusers, class_name).from_pretrained(source.location, **kwargs)
    except (OSError, ValueError) as exc:
        raise _explain(source, exc) from exc
    return module.to(placement.device).eval()


def _config(source: ControlSource) -> dict[str, Any]:
    if source.kind is SourceKind.FOLDER:
        loaded: dict[str, Any] = json.loads((Path(source.location) / "config.json").read_text(encoding="utf-8"))
        return loaded
    from diffusers import ControlNetModel

    config = ControlNetModel.load_config(source.location, subfolder=source.subfolder)
    return dict(config)


def _load_single_file(path: Path, placement: Placement) -> Any:
    from diffusers import ControlNetModel
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as weights:
        keys = list(weights.keys())
    if any(key.startswith("adapter.") for key in keys):
        raise InvalidRequestError(
            f"{path.name} looks like a T2I-Adapter; diffusers loads those from a folder or hub id, not a single file",
            param="controls",
        )
    return ControlNetModel.from_single_file(str(path), torch_dtype=placement.dtype)


def _explain(source: ControlSource, exc: Exception) -> Exception:
    reason = first_line(exc)
    if "safetensors" in reason.lower():
        return UnsafeModelFormatError(
            f"control model {source.name} has no safetensors weights (pickle weights are refused): {reason[:300]}",
            param="controls",
        )
    if source.kind is SourceKind.HUB:
        return ModelDownloadError(
            f"could not get control model {source.name!r} from the Hugging Face Hub ({reason[:300]}); download it "
            f"once with `hf download {source.location}` and run with HF_HUB_OFFLINE=1, or pass a local folder",
            param="controls",
        )
    return ModelDownloadError(f"could not load control model {source.name}: {reason[:300]}", param="controls")


def _load_depth_estimator(reference: str, placement: Placement) -> DepthEstimator:
    """transformers' depth-estimation pipeline on ``reference`` (hub id or folder; safetensors only)."""
    if Path(reference).suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeModelFormatError("the depth model must be safetensors (pickles are refused)", param="controls")
    from transformers import pipeline
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        estimator = pipeline(
            "depth-estimation", model=reference, device=placement.device, model_kwargs={"use_safetensors": True}
        )
    except (OSError, ValueError) as exc:
        reason = first_line(exc)
        raise ModelDownloadError(
            f"could not load the depth model {reference}: {reason[:300]}", param="controls"
        ) from exc

    def estimate(picture: Image.Image) -> Image.Image:
        depth: Image.Image = estimator(picture)["depth"]
        return depth

    return estimate


def _exists(path: Path, check: str) -> bool:
    try:
        return bool(getattr(path, check)())
    except (OSError, ValueError):
        return False
