"""``limner upscale``, ``limner outpaint`` and ``limner generate --hires`` on tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from limner.cli.main import app
from limner.imaging.png import read_parameters
from limner.testing.tiny_models import build_tiny_upscaler

runner = CliRunner()


@pytest.fixture
def env(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    picture = Image.fromarray((np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8))
    picture.save(tmp_path / "photo.png")
    return tmp_path


def written(output: str) -> Path:
    return Path(output.strip().splitlines()[-1])


def test_upscale_writes_a_bigger_png_that_records_the_upscaler(env: Path) -> None:
    model = build_tiny_upscaler(env / "tiny-x2.safetensors", "compact", 2)
    result = runner.invoke(app, ["upscale", "photo.png", "--model", str(model), "--scale", "3", "--tile", "64",
                                 "--out", str(env / "big")])  # fmt: skip
    assert result.exit_code == 0, result.output
    path = written(result.stdout)
    assert path.parent == env / "big"
    with Image.open(path) as image:
        assert image.size == (120, 90)
    record, a1111 = read_parameters(path)
    assert record is not None
    assert a1111 is not None
    assert (a1111.get("Postprocess upscaler"), a1111.get("Postprocess upscale by")) == (str(model), "3"), a1111
    assert "Denoising strength" not in a1111
    assert record.request.task.value == "upscale"
    assert record.request.upscaler == str(model)
    assert record.request.upscale_factor == 3
    assert record.pipeline == "Compact x2 (spandrel)"


def test_upscale_refuses_a_pickle_with_exit_2(env: Path) -> None:
    torch.save({"weight": torch.zeros(1)}, env / "4x.pth")
    result = runner.invoke(app, ["upscale", "photo.png", "--model", "4x.pth"])
    assert result.exit_code == 2
    assert "pickle" in result.output
    assert not (env / "out").exists()


def test_upscale_bad_input_is_exit_2(env: Path) -> None:
    model = build_tiny_upscaler(env / "tiny-x2.safetensors", "compact", 2)
    for arguments, fragment in ((["--scale", "20"], "8"), (["--tile", "8"], "tile_size")):
        result = runner.invoke(app, ["upscale", "photo.png", "--model", str(model), *arguments])
        assert result.exit_code == 2, result.output
        assert fragment in result.output
    missing = runner.invoke(app, ["upscale", "nope.png", "--model", str(model)])
    assert missing.exit_code == 2


def test_outpaint_extends_the_picture_and_keeps_it(env: Path) -> None:
    result = runner.invoke(app, ["outpaint", "photo.png", "a wide meadow", "--right", "24", "--bottom", "8",
                                 "--steps", "2", "--seed", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with Image.open(written(result.stdout)) as output, Image.open(env / "photo.png") as original:
        assert output.size == (64, 40)  # 40 + 24, 30 + 8 (+2 to a multiple of 8)
        assert np.array_equal(np.asarray(output.convert("RGB"))[:30, :40], np.asarray(original.convert("RGB")))
    record, _ = read_parameters(written(result.stdout))
    assert record is not None
    assert record.request.outpaint is not None
    assert record.request.outpaint.right == 24


def test_outpaint_without_sides_is_exit_2(env: Path) -> None:
    result = runner.invoke(app, ["outpaint", "photo.png", "more"])
    assert result.exit_code == 2
    assert "--left" in result.output


def test_generate_with_hires_fix(env: Path) -> None:
    result = runner.invoke(app, ["generate", "a fox", "--size", "32x32", "--steps", "2", "--seed", "1",
                                 "--hires", "2", "--hires-strength", "0.5", "--hires-upscaler", "lanczos"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with Image.open(written(result.stdout)) as image:
        assert image.size == (64, 64)
    _, a1111 = read_parameters(written(result.stdout))
    assert a1111 is not None
    assert (a1111["Hires upscale"], a1111["Hires upscaler"], a1111["Denoising strength"]) == ("2", "lanczos", "0.5")
    refused = runner.invoke(app, ["generate", "a fox", "--size", "2048x2048", "--hires", "2"])
    assert refused.exit_code == 2
    assert "hires" in refused.output
