"""Upscaler models: ESRGAN-family ``.safetensors`` files through spandrel, and diffusers' SD x4 upscaler.

Why two kinds behind one reference: users name an upscaler the way they name a model. A
``.safetensors`` file (local, or ``owner/repo/file.safetensors`` on the hub) is a pixel model whose
architecture and scale spandrel reads from its keys (ESRGAN, Real-ESRGAN compact, SwinIR, HAT ...,
what ComfyUI loads); a diffusers folder or hub id is ``StableDiffusionUpscalePipeline`` (a prompt-guided
x4 diffusion model), loaded through the engine's model cache like any model. Pickle files
(``.pth``, ``.pt``, ``.ckpt``, ``.bin``) are refused before anything is read: loading one can run code.
Both kinds run tile by tile (:mod:`limner.engines.local.tiling`), so a big picture needs no more memory
than a small one beyond the result itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from limner.core.errors import (
    InvalidRequestError,
    ModelDownloadError,
    ModelNotFoundError,
    UnsafeModelFormatError,
    UnsupportedTaskError,
    first_line,
)
from limner.engines.local.device import Placement
from limner.engines.local.model_refs import PICKLE_SUFFIXES, ModelSource, check_weights_file, resolve_model
from limner.engines.local.small_cache import SmallModuleCache
from limner.engines.local.spandrel_import import NEEDS_TORCHVISION, import_spandrel, torchvision_available
from limner.engines.local.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, run_tiled

MAX_PASSES = 3
X4_PIPELINE = "StableDiffusionUpscalePipeline"
X4_TILE = 128  # the x4 model's VAE decodes 4x the tile; 128 px keeps that at 512x512
CONVERT_HINT = (
    'Convert it once, where you trust the file: python -c "import torch, safetensors.torch as s; '
    "s.save_file(torch.load('MODEL.pth', weights_only=True), 'MODEL.safetensors')\" "
    "(nested checkpoints keep the weights under 'params_ema' or 'params'), or use chaiNNer's converter."
)
OnTile = Callable[[int, int], None]
"""Told (tiles done, tiles in all) after each tile; may raise to stop."""


class UpscalerKind(StrEnum):
    PIXEL = "pixel"  # a spandrel architecture: ESRGAN and kin
    DIFFUSION = "diffusion"  # diffusers' StableDiffusionUpscalePipeline


@dataclass(frozen=True)
class UpscalerSource:
    """A resolved upscaler reference. ``model`` is set for the diffusion kind; ``location`` is a local
    file, or ``repo`` + ``location`` a file in a hub repository, for the pixel kind."""

    kind: UpscalerKind
    name: str
    location: str = ""
    repo: str | None = None
    model: ModelSource | None = None


def resolve_upscaler(ref: str, param: str = "upscaler") -> UpscalerSource:
    """Resolve what the user named, refusing pickle files and unknown paths before anything loads."""
    path = _expanded(ref)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise UnsafeModelFormatError(
            f"upscaler {path.name}: {suffix} files are pickles, and loading a pickle can run any code in it; "
            f"limner loads .safetensors only. {CONVERT_HINT}",
            param=param,
        )
    if suffix == ".safetensors":
        if _is_file(path):
            check_weights_file(path, param=param)
            return UpscalerSource(UpscalerKind.PIXEL, path.stem, str(path.resolve()))
        parts = ref.split("/")
        if len(parts) >= 3 and ".." not in parts and not ref.startswith(("/", "~", ".")):
            return UpscalerSource(UpscalerKind.PIXEL, path.stem, "/".join(parts[2:]), repo="/".join(parts[:2]))
        raise ModelNotFoundError(f"no such upscaler file: {ref}", param=param)
    try:
        model = resolve_model(ref)
    except InvalidRequestError as exc:
        raise ModelNotFoundError(
            f"upscaler {ref!r}: give an ESRGAN-family .safetensors file (local or 'owner/repo/file.safetensors') "
            "or an SD x4 upscaler (a diffusers folder or hub id such as stabilityai/stable-diffusion-x4-upscaler)",
            param=param,
        ) from exc
    return UpscalerSource(UpscalerKind.DIFFUSION, model.name, model=model)


def _expanded(ref: str) -> Path:
    """``~`` expanded; ``~someone`` of an unknown user stays as written (and then names no file)."""
    try:
        return Path(ref).expanduser()
    except RuntimeError:
        return Path(ref)


def _is_file(path: Path) -> bool:
    """``path.is_file()``; a name the file system cannot look up (too long, invalid) is no file."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class PixelUpscaler:
    """A loaded spandrel model: an image-to-image network with a fixed integer ``scale``."""

    name: str
    architecture: str
    scale: int
    descriptor: Any  # spandrel.ImageModelDescriptor

    def run_once(self, image: Image.Image, tile: int | None, on_tile: OnTile | None = None) -> Image.Image:
        """One pass of the network: ``scale`` times larger; ``tile`` None or 0 runs the whole picture at once."""
        parameter = next(self.descriptor.model.parameters())

        def network(tensor: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return self.descriptor(tensor.to(device=parameter.device, dtype=parameter.dtype)).float().cpu()

        size = tile or max(image.size)
        return run_tiled(image, network, self.scale, size, DEFAULT_OVERLAP, on_tile)

    def upscale(
        self, image: Image.Image, factor: float, tile: int | None, on_tile: OnTile | None = None
    ) -> Image.Image:
        """``image`` ``factor`` times larger: as many passes as reach the factor, then Lanczos to the exact size."""
        target = (round(image.width * factor), round(image.height * factor))
        passes = 1 if self.scale == 1 else max(1, min(MAX_PASSES, math.ceil(math.log(factor, self.scale) - 1e-9)))
        for _ in range(passes):
            image = self.run_once(image, tile, on_tile)
        if image.size != target:
            image = image.resize(target, Image.Resampling.LANCZOS)
        return image


class PixelUpscalers:
    """Loaded pixel upscalers, the most recently used kept (they are small: 1-70 MB)."""

    def __init__(self, placement: Placement, capacity: int = 2) -> None:
        self._placement = placement
        self._loaded: SmallModuleCache[str, PixelUpscaler] = SmallModuleCache(capacity)

    def get(self, source: UpscalerSource) -> PixelUpscaler:
        key = f"{source.repo or ''}:{source.location}"
        return self._loaded.get(key, lambda: load_pixel_upscaler(source, self._placement))


def load_pixel_upscaler(source: UpscalerSource, placement: Placement) -> PixelUpscaler:
    """Read the safetensors file and let spandrel find its architecture and scale."""
    path = Path(source.location)
    if source.repo is not None:
        path = _hub_file(source)
    try:
        spandrel = import_spandrel()
    except ImportError as exc:
        raise UnsupportedTaskError(
            "ESRGAN-family upscalers need spandrel, which this installation lacks: "
            "pip install --no-deps 'spandrel>=0.4,<0.5' (torchvision is not needed)",
            param="upscaler",
        ) from exc
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError as exc:
        raise UnsupportedTaskError(
            f"upscaler {source.name}: spandrel recognises no architecture in it (is it an upscaler?)", param="upscaler"
        ) from exc
    except (RuntimeError, KeyError, ValueError) as exc:
        raise InvalidRequestError(f"upscaler {source.name} could not be loaded: {first_line(exc)[:300]}",
                                  param="upscaler") from exc  # fmt: skip
    architecture = str(descriptor.architecture.id)
    if architecture in NEEDS_TORCHVISION and not torchvision_available():
        raise UnsupportedTaskError(
            f"upscaler {source.name} is a {architecture} model, which needs torchvision (not installed here)",
            param="upscaler",
        )
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise UnsupportedTaskError(
            f"upscaler {source.name} is a {architecture} {descriptor.purpose} model, not an RGB upscaler",
            param="upscaler",
        )
    descriptor.to(placement.device).eval()
    if placement.dtype == torch.float16 and descriptor.supports_half:
        descriptor.half()
    elif placement.dtype == torch.bfloat16 and descriptor.supports_bfloat16:
        descriptor.bfloat16()
    return PixelUpscaler(source.name, architecture, int(descriptor.scale), descriptor)


def _hub_file(source: UpscalerSource) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        path = Path(hf_hub_download(str(source.repo), source.location))
    except Exception as exc:  # hub client errors come in many classes (offline, 404, gated)
        raise ModelDownloadError(
            f"could not get upscaler {source.repo}/{source.location} from the Hugging Face Hub: "
            f"{first_line(exc)[:300]}",
            param="upscaler",
        ) from exc
    check_weights_file(path, param="upscaler")
    return path


@dataclass(frozen=True)
class DiffusionUpscale:
    """How to call the SD x4 upscaler: its prompt, steps, guidance, seed and noise level."""

    prompt: str
    negative_prompt: str
    steps: int
    guidance_scale: float
    seed: int
    noise_level: int = 20


def diffusion_upscale(
    pipeline: Any,
    image: Image.Image,
    factor: float,
    call: DiffusionUpscale,
    tile: int | None,
    on_tile: OnTile | None = None,
) -> Image.Image:
    """One x4 pass of ``StableDiffusionUpscalePipeline`` tile by tile (each tile from the same seed), then
    Lanczos to ``factor``."""
    if type(pipeline).__name__ != X4_PIPELINE:
        raise UnsupportedTaskError(
            f"{type(pipeline).__name__} is not an upscaler; give an ESRGAN-family .safetensors file or an "
            f"SD x4 upscaler ({X4_PIPELINE})",
            param="upscaler",
        )
    scale = 4

    def network(tensor: torch.Tensor) -> torch.Tensor:
        output = pipeline(
            prompt=call.prompt,
            negative_prompt=call.negative_prompt or None,
            image=tensor,  # [0, 1]; the pipeline normalises it
            num_inference_steps=call.steps,
            guidance_scale=call.guidance_scale,
            noise_level=call.noise_level,
            generator=torch.Generator(device="cpu").manual_seed(call.seed),
            output_type="pt",
        )
        return output.images.float().cpu()

    with torch.inference_mode():
        result = run_tiled(image, network, scale, tile or X4_TILE, DEFAULT_OVERLAP // 2, on_tile)
    target = (round(image.width * factor), round(image.height * factor))
    return result if result.size == target else result.resize(target, Image.Resampling.LANCZOS)


__all__ = [
    "DEFAULT_TILE",
    "DiffusionUpscale",
    "PixelUpscaler",
    "PixelUpscalers",
    "UpscalerKind",
    "UpscalerSource",
    "diffusion_upscale",
    "load_pixel_upscaler",
    "resolve_upscaler",
]
