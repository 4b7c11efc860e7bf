"""Step previews: a small decoder decodes them (throttled); big ones leave it to the linear map."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline

from limner.engines.local.previews import DECODED_PREVIEW_INTERVAL_SECONDS, StepPreviews, latent_preview, step_previews
from limner.weights import LIMNER_TINY


class _Pipeline:
    def __init__(self, vae: Any) -> None:
        self.vae = vae


def test_an_sd_sized_decoder_is_not_run_at_every_step() -> None:
    with torch.device("meta"):
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2)  # fmt: skip
    previews = step_previews(_Pipeline(vae))
    assert previews.make is latent_preview
    assert previews.interval_seconds == 0


def test_limner_tiny_previews_are_decoded_and_look_like_the_picture() -> None:
    pipeline = StableDiffusionPipeline.from_pretrained(str(LIMNER_TINY))
    pipeline.set_progress_bar_config(disable=True)
    previews = step_previews(pipeline)
    assert previews.interval_seconds == DECODED_PREVIEW_INTERVAL_SECONDS
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        latents = pipeline("a red heart", num_inference_steps=8, guidance_scale=4, width=64, height=64,
                           generator=generator, output_type="latent").images  # fmt: skip
        final = pipeline.image_processor.postprocess(pipeline.vae.decode(latents).sample)[0]
    decoded = previews.make(latents)
    assert decoded is not None
    assert decoded.size == (64, 64)
    linear = latent_preview(latents).resize((64, 64))  # type: ignore[union-attr]
    target = np.asarray(final, dtype=float)
    assert np.abs(np.asarray(decoded, dtype=float) - target).mean() < 2
    assert np.abs(np.asarray(linear, dtype=float) - target).mean() > 20  # SD's map misreads limner-tiny's latents


def test_decoded_previews_are_throttled() -> None:
    now = [0.0]
    previews = StepPreviews(latent_preview, interval_seconds=0.5, clock=lambda: now[0])
    due = []
    for _ in range(6):
        due.append(previews.due())
        now[0] += 0.2
    assert due == [True, False, False, True, False, False]
