"""``limner train dreambooth`` from a folder, then generation with the registered LoRA by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from limner.cli.main import app

runner = CliRunner()


def test_dreambooth_then_generate_by_name(tiny_models: dict[str, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    pictures = tmp_path / "dog"
    pictures.mkdir()
    for index, color in enumerate(("red", "tan", "brown")):
        Image.new("RGB", (64, 64), color).save(pictures / f"{index}.jpg")
    result = runner.invoke(app, ["train", "dreambooth", "--instance-images", str(pictures), "--instance-prompt",
                                 "a photo of sks dog", "--name", "my-dog", "--steps", "4", "--rank", "4",
                                 "--checkpoint-every", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--lora my-dog" in result.output
    generated = runner.invoke(app, ["generate", "a photo of sks dog", "--lora", "my-dog", "--size", "64x64",
                                    "--steps", "2"])  # fmt: skip
    assert generated.exit_code == 0, generated.output
    again = runner.invoke(app, ["train", "dreambooth", "--instance-images", str(pictures), "--instance-prompt", "x",
                                "--name", "my-dog", "--steps", "1"])  # fmt: skip
    assert again.exit_code == 2
    assert "already registered" in again.output


def test_dreambooth_classes_prints_the_token_of_each_class(tiny_models: dict[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    pictures = tmp_path / "dogs"
    for breed, color in (("corgi", "tan"), ("poodle", "white")):
        (pictures / breed).mkdir(parents=True)
        for index in range(2):
            Image.new("RGB", (64, 64), color).save(pictures / breed / f"{index}.jpg")
    result = runner.invoke(app, ["train", "dreambooth", "--instance-images", str(pictures), "--classes",
                                 "--instance-prompt", "a photo of {token} {class}", "--name", "dogs", "--steps", "2",
                                 "--rank", "4", "--checkpoint-every", "2"], terminal_width=200)  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {tuple(line.replace("│", " ").split()) for line in result.stdout.splitlines()}
    assert ("corgi", "lmn0") in rows
    assert ("poodle", "lmn1") in rows
