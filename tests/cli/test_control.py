"""``--control`` on generate, img2img and inpaint: parsing, pairing with models, saved control pictures, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from limner.cli.main import app
from limner.imaging.png import read_parameters
from limner.testing.tiny_control import build_tiny_controlnet

runner = CliRunner()


@pytest.fixture(scope="module")
def controlnet(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_controlnet(tiny_models["txt2img"], tmp_path_factory.mktemp("cli-control") / "controlnet")


@pytest.fixture
def env(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    picture = Image.new("RGB", (32, 32), "white")
    picture.paste((0, 0, 0), (8, 8, 24, 24))
    picture.save(tmp_path / "square.png")
    return tmp_path


BASE = ["--steps", "1", "--size", "32x32", "--seed", "2"]


def test_generate_with_two_controls_saves_the_control_pictures(env: Path, controlnet: Path) -> None:
    result = runner.invoke(app, ["generate", "a house", *BASE, "--control", "square.png", "--control",
                                 "square.png:scribble:0.5", "--control-model", str(controlnet), "--control-end",
                                 "0.8", "--save-control"])  # fmt: skip
    assert result.exit_code == 0, result.output
    output, first, second = (Path(line) for line in result.stdout.strip().splitlines())
    assert first.name == f"{output.stem}-control-1.png"
    edges = np.asarray(Image.open(first).convert("L"))
    assert edges[8, 8:24].max() == 255  # the square's top edge
    assert edges[16, 12:20].max() == 0  # inside it: no edge
    assert np.asarray(Image.open(second).convert("L")).mean() > edges.mean()  # scribble strokes are thicker
    record, _ = read_parameters(output)
    assert record is not None
    assert [(spec.type.value, spec.weight, spec.end) for spec in record.request.controls] == [
        ("canny", 1.0, 0.8),
        ("scribble", 0.5, 0.8),
    ]
    assert record.pipeline == "StableDiffusionControlNetPipeline"


def test_img2img_with_a_control(env: Path, controlnet: Path) -> None:
    control = ["--control", "square.png:none", "--control-model", str(controlnet), "--guess-mode"]
    result = runner.invoke(app, ["img2img", "square.png", "a house", *BASE, "--strength", "1", *control])
    assert result.exit_code == 0, result.output
    record, _ = read_parameters(Path(result.stdout.strip()))
    assert record is not None
    assert record.pipeline == "StableDiffusionControlNetImg2ImgPipeline"
    assert record.request.guess_mode


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--control", "square.png:edges"], "not a control type"),
        (["--control", "square.png:canny:9"], "less than or equal to 4"),
        (["--control", "square.png"], "names no model"),
        (
            [
                "--control",
                "square.png",
                "--control",
                "square.png",
                "--control-model",
                "a/b",
                "--control-model",
                "c/d",
                "--control-model",
                "e/f",
            ],
            "2 --control pictures but 3",
        ),
        (["--control-model", "a/b"], "need a control picture"),
        (["--control", "square.png", "--control-model", "cn.pth"], "pickle"),
        (["--control", "missing.png", "--control-model", "a/b"], "missing.png"),
        (["--control", "square.png:pose", "--control-model", "a/b"], "OpenPose"),
        (
            ["--control", "square.png", "--control-model", "a/b", "--control-start", "0.6", "--control-end", "0.4"],
            "must come before",
        ),
    ],
)
def test_bad_control_options_exit_2(env: Path, arguments: list[str], message: str) -> None:
    result = runner.invoke(app, ["generate", "a house", *BASE, *arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (env / "out").exists()


def test_edit_and_character_take_no_control_options() -> None:
    result = runner.invoke(app, ["edit", "x.png", "cartoonize", "--control", "square.png"])
    assert result.exit_code == 2
    assert "No such option" in result.output
