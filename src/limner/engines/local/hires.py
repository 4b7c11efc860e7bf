"""Hires fix: generate at the model's comfortable size, enlarge, then refine at the final size with img2img.

Why: a model trained at 512 px repeats subjects when asked for 1024 px directly. Drawing the layout at
the base size and letting img2img (the same weights through ``from_pipe``, the same seeds) add the
detail at the larger size avoids that. The enlargement is one of: ``latent`` (the first pass's latents
resized bilinearly; no decode and encode between passes, and a softer start that needs denoise ~0.5+),
``lanczos`` (decoded pixels resized), or an upscaler model (ESRGAN-family or SD x4; sharper pixels, so
denoise ~0.3 suffices).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from PIL import Image

from limner.core.errors import UnsupportedTaskError
from limner.core.progress import ProgressCallback, ProgressEvent
from limner.core.requests import HIRES_LANCZOS, HIRES_LATENT, GenerationRequest, Task, hires_size


def first_pass_output(request: GenerationRequest) -> str:
    """The first pass's ``output_type``: latents for latent enlargement, else pictures."""
    return "latent" if request.hires_upscaler == HIRES_LATENT else "pil"


def refine_steps(request: GenerationRequest) -> int:
    """Denoising steps the img2img pass runs (diffusers runs ``int(steps * strength)`` of ``steps``)."""
    steps = request.hires_steps or request.steps
    return max(1, min(steps, int(steps * request.hires_strength)))


def refine_request(request: GenerationRequest, size: tuple[int, int]) -> GenerationRequest:
    """The second pass as an img2img request at the final size (its pictures are passed beside it)."""
    return request.model_copy(
        update={
            "task": Task.IMG2IMG,
            "strength": request.hires_strength,
            "steps": request.hires_steps or request.steps,
            "width": size[0],
            "height": size[1],
            "hires_scale": None,
        }
    )


def final_size(request: GenerationRequest, base: tuple[int, int]) -> tuple[int, int]:
    return hires_size(base[0], base[1], request.hires_scale or 1.0)


def enlarge_latents(latents: torch.Tensor, size: tuple[int, int], latent_scale: int) -> torch.Tensor:
    """Latents of the first pass at the final size (bilinear, as A1111's "Latent"); ``latent_scale`` is
    how many pixels one latent covers (the VAE's scale factor: 8 for SD, 4 for limner-tiny)."""
    if latents.ndim != 4:  # packed sequences (FLUX ...) are no picture-shaped grid
        raise UnsupportedTaskError(
            "the latent hires fix works on Stable Diffusion latents; use hires_upscaler lanczos or a model",
            param="hires_upscaler",
        )
    width, height = size
    return torch.nn.functional.interpolate(
        latents, size=(height // latent_scale, width // latent_scale), mode="bilinear", align_corners=False
    )


def enlarge_pictures(
    pictures: list[Image.Image],
    request: GenerationRequest,
    size: tuple[int, int],
    upscale: Callable[[Image.Image, float], Image.Image] | None = None,
) -> list[Image.Image]:
    """Decoded pictures at the final size: Lanczos, or ``upscale(picture, factor)`` (a model) then Lanczos."""
    if request.hires_upscaler != HIRES_LANCZOS and upscale is not None:
        pictures = [upscale(picture, size[0] / picture.width) for picture in pictures]
    return [p if p.size == size else p.resize(size, Image.Resampling.LANCZOS) for p in pictures]


def whole_run_progress(
    progress: ProgressCallback, first_steps: int, second_steps: int, second: bool
) -> ProgressCallback:
    """Report both passes as one run of ``first_steps + second_steps`` steps."""
    total = first_steps + second_steps
    offset = first_steps if second else 0

    def report(event: ProgressEvent) -> None:
        progress(dataclasses.replace(event, step=min(total, offset + event.step), total_steps=total))

    return report
