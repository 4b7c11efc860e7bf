"""Presets are data: built-ins load, user files extend them, user options win."""

from __future__ import annotations

from pathlib import Path

import pytest

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.requests import Task
from limner.engines.local.engine import LocalEngine
from limner.presets import load_presets
from limner.services.generation import GenerationService


def resolver(presets_file: Path | None = None) -> GenerationService:
    """Presets apply through the generation service (resolving needs no weights)."""
    settings = Settings(presets_file=presets_file, device="cpu", _env_file=None)  # type: ignore[call-arg]
    return GenerationService(settings, LocalEngine(settings))


def test_builtin_presets() -> None:
    presets = load_presets()
    cartoonize = presets["cartoonize"]
    assert cartoonize.model == "instruction-tuning-sd/cartoonizer"
    assert cartoonize.prompt == "Cartoonize the following image"
    assert cartoonize.task is Task.EDIT
    assert presets["fast"].task is Task.TXT2IMG


def test_preset_fills_defaults_and_user_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine that can download the preset's model (offline, limner-tiny-edit stands in: test_preset_fallback).
    monkeypatch.setattr("limner.services.preset_fallback.hub_reachable", lambda: True)
    request = resolver().resolve({"init_image": "p.png", "steps": 5}, "cartoonize")
    assert request.prompt == "Cartoonize the following image"
    assert request.model == "instruction-tuning-sd/cartoonizer"
    assert request.steps == 5
    assert request.image_guidance_scale == 1.5
    assert request.preset == "cartoonize"
    own = resolver().resolve({"init_image": "p.png", "prompt": "make it pop art"}, "cartoonize")
    assert own.prompt == "make it pop art"


def test_user_presets_file(tmp_path: Path) -> None:
    path = tmp_path / "presets.toml"
    path.write_text(
        '[watercolor]\ntask = "txt2img"\nprompt = "{prompt}, watercolor"\nsteps = 30\n[fast]\nmodel = "my/turbo"\n',
        encoding="utf-8",
    )
    presets = load_presets(path)
    request = resolver(path).resolve({"prompt": "a fox"}, "watercolor")
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
        resolver().resolve({"prompt": "x"}, "nope")
