"""The shipped limner-tiny-character adapter loads in diffusers, is limner-tiny's default, and carries the reference.

Why here: ``limner character ref.png "..."`` with no download rests on these files; a re-export
that breaks loading, or an adapter that no longer moves the picture toward the reference, must
fail CI. The reference is drawn in the test (a yellow face, a blue ball), not taken from the emoji
set, which is not in the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from diffusers import DiffusionPipeline, StableDiffusionPipeline
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from limner.cli.main import app
from limner.engines.local.ip_adapter import default_adapter
from limner.weights import LIMNER_TINY, LIMNER_TINY_CHARACTER, LIMNER_TINY_DEFAULTS

ADAPTER = LIMNER_TINY_CHARACTER / "ip-adapter.safetensors"
pytestmark = pytest.mark.skipif(not ADAPTER.exists(), reason="limner-tiny-character weights not exported yet")
runner = CliRunner()


def face() -> Image.Image:
    """A yellow smiling face on white, drawn like an emoji."""
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((6, 6, 58, 58), fill=(250, 200, 40), outline=(200, 140, 20), width=2)
    draw.ellipse((20, 20, 27, 31), fill=(70, 40, 20))
    draw.ellipse((37, 20, 44, 31), fill=(70, 40, 20))
    draw.arc((18, 26, 46, 50), 20, 160, fill=(70, 40, 20), width=3)
    return image


def ball() -> Image.Image:
    """A plain blue disc on white."""
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).ellipse((8, 8, 56, 56), fill=(40, 90, 230))
    return image


def features(image: Image.Image | np.ndarray) -> torch.Tensor:
    """16x16 RGB (area average), the benchmark's nearest-neighbour space."""
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    return F.adaptive_avg_pool2d(pixels, 16).flatten()


@pytest.fixture(scope="module")
def pipe() -> StableDiffusionPipeline:
    torch.set_num_threads(1)
    pipeline = DiffusionPipeline.from_pretrained(str(LIMNER_TINY), use_safetensors=True)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_folder_loads_with_diffusers_and_is_the_default(pipe: StableDiffusionPipeline) -> None:
    assert default_adapter(pipe) == str(ADAPTER)
    pipe.load_ip_adapter(str(LIMNER_TINY_CHARACTER), subfolder="", weight_name=ADAPTER.name)
    try:
        assert pipe.image_encoder.config.image_size == 64
        assert pipe.feature_extractor.crop_size["height"] == 64
        assert not list(LIMNER_TINY_CHARACTER.rglob("*.bin"))
        assert sum(p.stat().st_size for p in LIMNER_TINY_CHARACTER.rglob("*") if p.is_file()) < 10 * 1024 * 1024
        held_out = json.loads((LIMNER_TINY_CHARACTER / "training.json").read_text())["held_out_subjects"]
        assert len(held_out) == 100
    finally:
        pipe.unload_ip_adapter()


def test_output_moves_toward_the_reference(pipe: StableDiffusionPipeline) -> None:
    """Same prompt and seed: with the reference at the CLI's default strength (0.6), the picture is
    nearer the reference (16x16 RGB distance) than with strength 0 (the adapter off), for both references.
    Measured on the shipped weights: 4.74 against 8.76 (face, seed 0), 6.25 against 8.73 (disc, seed 1)."""
    settings = {**LIMNER_TINY_DEFAULTS, "output_type": "np"}
    pipe.load_ip_adapter(str(LIMNER_TINY_CHARACTER), subfolder="", weight_name=ADAPTER.name)
    try:
        for seed, reference in enumerate((face(), ball())):
            distances = []
            for strength in (0.6, 0.0):
                pipe.set_ip_adapter_scale(strength)
                generator = torch.Generator().manual_seed(seed)
                image = pipe("an emoji", ip_adapter_image=reference, generator=generator, **settings).images[0]
                distances.append(float(torch.dist(features((image * 255).astype(np.uint8)), features(reference))))
            near, far = distances
            assert near < 0.85 * far, (seed, near, far)
    finally:
        pipe.unload_ip_adapter()


def test_character_command_needs_no_adapter_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``limner character`` and a saved character on the default model, with no --ip-adapter anywhere."""
    for name in ("LIMNER_DEFAULT_MODEL", "LIMNER_IP_ADAPTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    face().save(tmp_path / "ref.png")
    scene = ("an emoji", "--seed", "3", "--steps", "8")
    direct = runner.invoke(app, ["character", "ref.png", *scene, "--out", "a"])
    assert direct.exit_code == 0, direct.output
    (path,) = [Path(line) for line in direct.stdout.splitlines() if line.endswith(".png")]
    assert Image.open(path).size == (64, 64)
    info = json.loads(runner.invoke(app, ["info", str(path), "--json"]).stdout)
    assert info["ip_adapter"] == str(ADAPTER)

    assert runner.invoke(app, ["characters", "add", "sunny", "ref.png"]).exit_code == 0
    saved = runner.invoke(app, ["generate", *scene, "--character", "sunny", "--out", "b"])
    assert saved.exit_code == 0, saved.output
    (again,) = [Path(line) for line in saved.stdout.splitlines() if line.endswith(".png")]
    assert Image.open(again).tobytes() == Image.open(path).tobytes()
