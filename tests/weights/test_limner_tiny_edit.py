"""The shipped limner-tiny-edit loads as an InstructPix2Pix pipeline, follows instructions, and is ``edit``'s default.

Why here: the zero-download edit path (``limner edit pic.png "make it blue"``, ``--preset cartoonize``
offline) relies on these weights; a re-export that breaks loading or loses the instruction must fail CI.
The picture is drawn here (a smiley no training triplet contains); a small version of the benchmark's bars.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, StableDiffusionInstructPix2PixPipeline
from PIL import Image
from typer.testing import CliRunner

from limner.cli.main import app
from limner.weights import LIMNER_TINY, LIMNER_TINY_EDIT

pytestmark = pytest.mark.skipif(
    not (LIMNER_TINY_EDIT / "model_index.json").exists(), reason="limner-tiny-edit weights not exported yet"
)


@pytest.fixture(scope="module")
def pipe() -> StableDiffusionInstructPix2PixPipeline:
    torch.set_num_threads(1)
    pipeline = DiffusionPipeline.from_pretrained(str(LIMNER_TINY_EDIT), use_safetensors=True)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def smiley() -> np.ndarray:
    """A 64px orange smiley on white: dark eyes and mouth."""
    image = np.full((64, 64, 3), 255, np.uint8)
    cv2.circle(image, (32, 32), 24, (245, 160, 30), -1)
    for x in (23, 41):
        cv2.circle(image, (x, 26), 4, (60, 40, 20), -1)
    cv2.ellipse(image, (32, 38), (12, 8), 0, 0, 180, (60, 40, 20), 3)
    return image


def blue_minus_red(image: np.ndarray) -> float:
    """Mean (B - R) over clearly coloured pixels (not the white background), in 0..255 units."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    coloured = pixels[(pixels.max(1) - pixels.min(1)) > 60]
    return float((coloured[:, 2] - coloured[:, 0]).mean()) if len(coloured) else 0.0


def _edit(pipe: StableDiffusionInstructPix2PixPipeline, instruction: str, seed: int) -> np.ndarray:
    result = pipe(
        instruction,
        image=Image.fromarray(smiley()),
        num_inference_steps=20,
        guidance_scale=5.0,
        image_guidance_scale=1.5,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    )
    return np.asarray(result.images[0] * 255, dtype=np.float64)


def test_loads_as_a_small_instruct_pix2pix_pipeline_sharing_limner_tinys_parts(
    pipe: StableDiffusionInstructPix2PixPipeline,
) -> None:
    assert isinstance(pipe, StableDiffusionInstructPix2PixPipeline)
    assert pipe.unet.config["in_channels"] == 8
    assert pipe.unet.dtype == torch.float32
    assert not list(LIMNER_TINY_EDIT.rglob("*.bin"))
    size = sum(p.stat().st_size for p in LIMNER_TINY_EDIT.rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024
    for part in ("text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
        assert (LIMNER_TINY_EDIT / part).read_bytes() == (LIMNER_TINY / part).read_bytes(), part


def greenness(image: np.ndarray) -> float:
    """Mean G - (R + B) / 2 over clearly coloured pixels, in 0..255 units."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    coloured = pixels[(pixels.max(1) - pixels.min(1)) > 60]
    return float((coloured[:, 1] - (coloured[:, 0] + coloured[:, 2]) / 2).mean()) if len(coloured) else 0.0


def test_colour_instructions_move_the_hue_their_way(pipe: StableDiffusionInstructPix2PixPipeline) -> None:
    """Same seed and picture: "make it blue" moves the orange smiley toward blue; "make it green" makes it
    far greener than the input and than "make it red".

    Measured on the shipped weights (seeds 0, 1): B - R from -215 (input) to -116 and -110; greenness
    from 22 (input) to 135 and 143 for green, -18 and -12 for red. Blue is this model's weakest colour
    (the benchmark's colour bar: blue 1/11, green 13/13), so blue is checked against the input only.
    """
    before = smiley().astype(np.float64)
    for seed in (0, 1):
        assert blue_minus_red(_edit(pipe, "make it blue", seed)) - blue_minus_red(before) > 60, seed
        green, red = greenness(_edit(pipe, "make it green", seed)), greenness(_edit(pipe, "make it red", seed))
        assert green - greenness(before) > 60, (seed, green)
        assert green - red > 80, (seed, green, red)


def test_limner_edit_with_no_model_uses_limner_tiny_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    picture = tmp_path / "pic.png"
    Image.fromarray(smiley()).save(picture)
    runner = CliRunner()
    result = runner.invoke(app, ["edit", str(picture), "make it blue", "--seed", "0"])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip().splitlines()[-1])
    record = json.loads(runner.invoke(app, ["info", str(path), "--json"]).stdout)
    assert record["request"]["model"] == "limner-tiny-edit"
    assert record["pipeline"] == "StableDiffusionInstructPix2PixPipeline"
    edited = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert edited.shape == (64, 64, 3)
    assert blue_minus_red(edited) - blue_minus_red(smiley().astype(np.float64)) > 60
