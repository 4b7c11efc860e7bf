"""Presets are data: built-ins load, user files extend them, user options win."""

from __future__ import annotations

from pathlib import Path

import pytest

from limner.core.errors import InvalidRequestError
from limner.core.requests import Task
from limner.presets import build_request, load_presets


def test_builtin_presets() -> None:
    presets = load_presets()
    cartoonize = presets["cartoonize"]
    assert cartoonize.model == "instruction-tuning-sd/cartoonizer"
    assert cartoonize.prompt == "Cartoonize the following image"
    assert cartoonize.task is Task.EDIT
    assert presets["fast"].task is Task.TXT2IMG


def test_preset_fills_defaults_and_user_wins() -> None:
    presets = load_presets()
    request = build_request({"init_image": "p.png", "steps": 5}, presets, "cartoonize")
    assert request.prompt == "Cartoonize the following image"
    assert request.model == "instruction-tuning-sd/cartoonizer"
    assert request.steps == 5
    assert request.image_guidance_scale == 1.5
    assert request.preset == "cartoonize"
    own = build_request({"init_image": "p.png", "prompt": "make it pop art"}, presets, "cartoonize")
    assert own.prompt == "make it pop art"


def test_user_presets_file(tmp_path: Path) -> None:
    path = tmp_path / "presets.toml"
    path.write_text(
        '[watercolor]\ntask = "txt2img"\nprompt = "{prompt}, watercolor"\nsteps = 30\n[fast]\nmodel = "my/turbo"\n',
        encoding="utf-8",
    )
    presets = load_presets(path)
    request = build_request({"prompt": "a fox"}, presets, "watercolor")
    assert request.prompt == "a fox, watercolor"
    assert request.steps == 30
    assert presets["fast"].model == "my/turbo"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("[a\n", "not valid TOML"), ("a = 1\n", "must be a table"), ("[a]\nsteps = 0\n", "steps"), ("[a]\nx = 1\n", "x")],
)
def test_bad_presets_file_is_reported(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidRequestError, match=fragment):
        load_presets(path)


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(InvalidRequestError, match="cartoonize"):
        build_request({"prompt": "x"}, load_presets(), "nope")
