"""Fine-tuning limner-tiny on a subject moves the token prompt toward it; an unrelated prompt moves less.

Measured with fixed seeds: for each generated picture, the pixel distance (mean absolute, 0-255) to
the nearest subject picture. Documented margins: the token prompt's distance drops by at least 10%,
and by more than the unrelated prompt's does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image, ImageDraw

from limner.engines.local.device import Placement
from limner.engines.local.model_refs import builtin_model_path
from limner.finetune.config import DreamBoothConfig
from limner.finetune.dataset import SubjectImages
from limner.finetune.trainer import LORA_FILE, run_dreambooth

TOKEN_PROMPT = "an emoji of sks"
UNRELATED_PROMPT = "an emoji of a red apple"


def subject_pictures() -> list[Image.Image]:
    """A made-up subject in a third art style: a green tile with a yellow dot, slightly varied."""
    pictures = []
    for shift in range(4):
        picture = Image.new("RGB", (64, 64), "white")
        draw = ImageDraw.Draw(picture)
        draw.rectangle((10 + shift, 10, 54 - shift, 54), fill=(30, 160, 40))
        draw.ellipse((24, 24, 40, 40), fill=(250, 220, 0))
        pictures.append(picture)
    return pictures


def distance_to_subject(pipeline: DiffusionPipeline, prompt: str, subject: np.ndarray) -> float:
    generators = [torch.Generator().manual_seed(seed) for seed in range(4)]
    images = pipeline(prompt, num_inference_steps=20, num_images_per_prompt=4, generator=generators).images
    return float(np.mean([np.abs(np.asarray(image, float) - subject).mean(axis=(1, 2, 3)).min() for image in images]))


@pytest.mark.slow
def test_token_prompt_moves_toward_the_subject(tmp_path: Path) -> None:
    model = builtin_model_path("limner-tiny")
    pictures = subject_pictures()
    cfg = DreamBoothConfig(instance_prompt=TOKEN_PROMPT, class_prompt="an emoji", prior_preservation=True,
                           num_class_images=16, steps=150, learning_rate=1e-3, rank=4, batch_size=2,
                           checkpoint_every=150)  # fmt: skip
    placement = Placement(torch.device("cpu"), torch.float32)
    result = run_dreambooth(
        str(model), SubjectImages(pictures, [""] * 4), cfg, tmp_path / "w", tmp_path / "o", placement
    )

    pipeline = DiffusionPipeline.from_pretrained(str(model), use_safetensors=True)
    pipeline.set_progress_bar_config(disable=True)
    subject = np.stack([np.asarray(picture, float) for picture in pictures])
    before = {prompt: distance_to_subject(pipeline, prompt, subject) for prompt in (TOKEN_PROMPT, UNRELATED_PROMPT)}
    pipeline.load_lora_weights(str(result.weights.parent), weight_name=LORA_FILE)
    after = {prompt: distance_to_subject(pipeline, prompt, subject) for prompt in (TOKEN_PROMPT, UNRELATED_PROMPT)}

    token_drop = 1 - after[TOKEN_PROMPT] / before[TOKEN_PROMPT]
    unrelated_drop = 1 - after[UNRELATED_PROMPT] / before[UNRELATED_PROMPT]
    assert token_drop >= 0.10, (before, after)
    assert token_drop > unrelated_drop, (before, after)
