"""Cheap step previews: latents to a small RGB picture with a fixed linear map, no VAE decode.

Why: decoding with the VAE at every step would cost as much as a step; a 4x3 linear projection
of SD-family latents gives a recognisable thumbnail for a progress view at almost no cost.
"""

from __future__ import annotations

import torch
from PIL import Image

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
