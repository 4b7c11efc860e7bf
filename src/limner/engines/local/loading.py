"""Load a base pipeline from a resolved source, with the pipeline class chosen by the model itself.

Why no per-model code: a diffusers folder or hub repo names its pipeline in ``model_index.json``,
and ``DiffusionPipeline.from_pretrained`` follows it; a single-file checkpoint is recognised by
diffusers' own key inspection. Hub and file errors become one clear line for the user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import diffusers
from diffusers import DiffusionPipeline
from diffusers.loaders.single_file_utils import infer_diffusers_model_type
from huggingface_hub.errors import HfHubHTTPError
from safetensors import safe_open
from transformers.utils import logging as transformers_logging

from limner.core.errors import ModelDownloadError, UnsafeModelFormatError, UnsupportedTaskError, first_line
from limner.engines.local.device import Placement
from limner.engines.local.model_refs import ModelSource, SourceKind
from limner.engines.local.single_file_configs import (
    OFFLINE_FAMILIES,
    FamilyChoice,
    choose_family,
    from_single_file_kwargs,
    predicts_v,
    shipped_config_root,
)

# diffusers' single-file model types (prefixes) -> the pipeline class that loads them.
_SINGLE_FILE_PIPELINES: tuple[tuple[str, str], ...] = (
    ("xl_inpaint", "StableDiffusionXLInpaintPipeline"),
    ("xl_refiner", "StableDiffusionXLImg2ImgPipeline"),
    ("xl", "StableDiffusionXLPipeline"),
    ("playground", "StableDiffusionXLPipeline"),
    ("inpainting", "StableDiffusionInpaintPipeline"),
    ("v1", "StableDiffusionPipeline"),
    ("v2", "StableDiffusionPipeline"),
    ("sd3", "StableDiffusion3Pipeline"),
    ("flux", "FluxPipeline"),
)
# Key prefixes of full single-file checkpoints (SD/SDXL UNet, FLUX, SD3, VAE in a full file).
_FULL_CHECKPOINT_PREFIXES = ("model.diffusion_model.", "double_blocks.", "joint_blocks.", "first_stage_model.")


def load_pipeline(
    source: ModelSource, placement: Placement, variant: str | None = None, single_file_configs: Path | None = None
) -> Any:
    """Load weights (safetensors only) onto the chosen device and dtype.

    The libraries' loading bars ("Loading pipeline components", "Loading weights") are switched off:
    limner reports progress itself (the CLI's step bar, the API's job events). ``single_file_configs``
    is a folder of per-family diffusers configs for single files; by default a hub cache of the
    family's repo, else the configs shipped in the package.
    """
    diffusers.utils.logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    if source.kind is SourceKind.SINGLE_FILE:
        pipeline: Any = _load_single_file(Path(source.location), placement, single_file_configs)
    else:
        pipeline = _load_pretrained(source, placement, variant)
    pipeline = pipeline.to(placement.device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _load_pretrained(source: ModelSource, placement: Placement, variant: str | None) -> DiffusionPipeline:
    kwargs: dict[str, Any] = {"dtype": placement.dtype, "use_safetensors": True}
    if variant:
        kwargs["variant"] = variant
    try:
        return DiffusionPipeline.from_pretrained(source.location, **kwargs)
    except (OSError, HfHubHTTPError, ValueError) as exc:
        raise _explain_load_error(source, exc) from exc


def _explain_load_error(source: ModelSource, exc: Exception) -> Exception:
    reason = first_line(exc)
    if "safetensors" in reason.lower() or "use_safetensors" in reason:
        return UnsafeModelFormatError(
            f"{source.name} has no safetensors weights (pickle weights are refused): {reason}", param="model"
        )
    if source.kind is SourceKind.HUB:
        return ModelDownloadError(
            f"could not get {source.name!r} from the Hugging Face Hub ({reason[:300]}). Check the network "
            f"and the id, or download it once with `hf download {source.name}` and run with HF_HUB_OFFLINE=1, "
            "or pass a local folder / .safetensors file.",
            param="model",
        )
    return ModelDownloadError(f"could not load {source.name}: {reason[:300]}", param="model")


class _LazyCheckpoint(Mapping[str, Any]):
    """Tensors of a safetensors file read on access, for diffusers' key-based model-type check."""

    def __init__(self, path: Path) -> None:
        self._file = safe_open(str(path), framework="pt")
        self._keys = set(self._file.keys())
        self.metadata: dict[str, str] = dict(self._file.metadata() or {})

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __getitem__(self, key: str) -> Any:
        return self._file.get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def single_file_pipeline_class(path: Path) -> type[DiffusionPipeline]:
    """The pipeline class for a single-file checkpoint, from diffusers' inspection of its keys."""
    return _inspect_single_file(path, _LazyCheckpoint(path))[0]


def _inspect_single_file(path: Path, checkpoint: _LazyCheckpoint) -> tuple[type[DiffusionPipeline], str]:
    """The pipeline class and diffusers' model type (``v1``, ``xl_base`` ...) of a single file."""
    if not any(key.startswith(_FULL_CHECKPOINT_PREFIXES) for key in checkpoint):
        looks_like_lora = any("lora" in key.lower() for key in checkpoint)
        hint = "it looks like a LoRA: pass it with --lora" if looks_like_lora else "no model weights found in it"
        raise UnsupportedTaskError(f"{path.name} is not a full model checkpoint ({hint})", param="model")
    try:
        model_type = infer_diffusers_model_type(checkpoint)
    except Exception as exc:  # diffusers raises assorted errors on unknown layouts
        raise UnsupportedTaskError(f"{path.name}: not a checkpoint layout diffusers recognises ({exc})") from exc
    for prefix, class_name in _SINGLE_FILE_PIPELINES:
        if model_type.startswith(prefix):
            pipeline_class: type[DiffusionPipeline] = getattr(diffusers, class_name)
            return pipeline_class, model_type
    raise UnsupportedTaskError(
        f"{path.name} is a {model_type!r} checkpoint; limner loads that family from a diffusers folder or "
        "hub id, not a single file",
        param="model",
    )


def _load_single_file(path: Path, placement: Placement, config_root: Path | None) -> DiffusionPipeline:
    checkpoint = _LazyCheckpoint(path)
    pipeline_class, model_type = _inspect_single_file(path, checkpoint)
    choice = choose_family(model_type, path, checkpoint.metadata, set(checkpoint))
    kwargs: dict[str, Any] = {"dtype": placement.dtype}
    if choice is not None:
        kwargs.update(from_single_file_kwargs(choice.family, config_root))
    try:
        pipeline = pipeline_class.from_single_file(str(path), **kwargs)
    except (OSError, HfHubHTTPError, ValueError) as exc:
        reason = first_line(exc)
        if choice is None:
            hint = (
                f"diffusers needs the config of this {model_type!r} checkpoint from the hub (cached once); "
                f"limner ships configs for {OFFLINE_FAMILIES}, and a diffusers folder loads fully offline."
            )
        else:
            hint = f"it was read as {choice.family} ({model_type!r} keys)."
        raise ModelDownloadError(
            f"could not load single-file checkpoint {path.name}: {reason[:300]}. {hint}", param="model"
        ) from exc
    if choice is not None:
        _settle_sd2_variant(pipeline, choice, config_root or shipped_config_root())
    return pipeline


def _settle_sd2_variant(pipeline: Any, choice: FamilyChoice, config_root: Path) -> None:
    """An SD 2.x file with no hint loads as 768-v; if its UNet predicts epsilon, use the 512 model's
    scheduler and default size instead (AUTOMATIC1111's probe, one 8x8 UNet call)."""
    if choice.hinted or choice.family != "sd2-768-v" or predicts_v(pipeline.unet):
        return
    folder = config_root / "sd2-512"
    scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text(encoding="utf-8"))
    scheduler_class = getattr(diffusers, str(scheduler_config["_class_name"]))
    pipeline.scheduler = scheduler_class.from_config(scheduler_config)
    unet_config = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    pipeline.unet.register_to_config(sample_size=unet_config["sample_size"])
