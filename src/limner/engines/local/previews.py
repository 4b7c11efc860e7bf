"""Step previews: latents to a small RGB picture, as cheaply as the model allows.

Why two ways: decoding with an SD-sized VAE at every step would cost as much as a step, so a
preview decodes with a decoder only when that costs milliseconds: a tiny autoencoder already in the
pipeline (``--decode fast``, TAESD family), or the model's own VAE when it is small (limner-tiny's
decoder has under a million parameters), and then at most every half second of the run, so that a
decode never costs more than a small share of the steps (on limner-tiny one decode is about as long
as one step). Otherwise a 4x3 linear projection of SD-family latents gives a thumbnail at every step
at almost no cost (it is only approximate, and wrong for latent spaces other than SD's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

SMALL_DECODER_PARAMETERS = 5_000_000  # decoders up to this size decode a preview in milliseconds on a CPU
PREVIEW_SIDE = 256  # longest side of a decoded preview (they travel in every progress event)
DECODED_PREVIEW_INTERVAL_SECONDS = 0.5
Previewer = Callable[[torch.Tensor], Image.Image | None]


@dataclass
class StepPreviews:
    """One run's previews: how to make one, and how often (``due`` is asked once per step)."""

    make: Previewer
    interval_seconds: float = 0.0
    clock: Callable[[], float] = time.monotonic
    _last: float | None = field(default=None, init=False)

    def due(self) -> bool:
        now = self.clock()
        if self._last is not None and now - self._last < self.interval_seconds:
            return False
        self._last = now
        return True


# Least-squares fit from SD 1.x latent channels to RGB, widely used by UIs for live previews.
_SD_LATENT_RGB = torch.tensor(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)
_SD_LATENT_CHANNELS = 4


def latent_preview(latents: torch.Tensor) -> Image.Image | None:
    """A preview of the first image in a batch of 4-channel latents; None for other layouts."""
    if latents.ndim != 4 or latents.shape[1] != _SD_LATENT_CHANNELS:
        return None
    first = latents[0].detach().to(device="cpu", dtype=torch.float32)
    rgb = torch.einsum("chw,cr->hwr", first, _SD_LATENT_RGB)
    pixels = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels, mode="RGB")


def step_previews(pipeline: Any) -> StepPreviews:
    """A run's previews: decoded by the pipeline's decoder when that is cheap (throttled), else the linear map."""
    vae: Any = getattr(pipeline, "vae", None)
    decoder = getattr(vae, "decoder", None)
    if vae is None or not isinstance(decoder, torch.nn.Module) or not callable(getattr(vae, "decode", None)):
        return StepPreviews(latent_preview)
    tiny = type(vae).__name__ == "AutoencoderTiny"
    if not tiny and sum(parameter.numel() for parameter in decoder.parameters()) > SMALL_DECODER_PARAMETERS:
        return StepPreviews(latent_preview)

    def decoded_preview(latents: torch.Tensor) -> Image.Image | None:
        if latents.ndim != 4:
            return None
        first = latents[:1].to(dtype=vae.dtype)
        scale = getattr(vae.config, "scaling_factor", 1.0) or 1.0
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        with torch.inference_mode():
            pixels = vae.decode(first / scale + shift).sample[0]
        array = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        picture = Image.fromarray(array, mode="RGB")
        picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        return picture

    return StepPreviews(decoded_preview, DECODED_PREVIEW_INTERVAL_SECONDS)
