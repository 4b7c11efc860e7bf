"""An edit preset whose hub model cannot be had falls back to the built-in edit model; anything usable wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from limner.config import Settings
from limner.core.requests import Task
from limner.engines.base import Engine
from limner.presets import Preset
from limner.services.generation import GenerationService
from limner.services.preset_fallback import hub_reachable, preset_fallback

CARTOONIZE = Preset(name="cartoonize", task=Task.EDIT, model="instruction-tuning-sd/cartoonizer", guidance_scale=7.0)


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline machine with an empty hub cache."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    return cache


def test_offline_without_the_model_falls_back_with_a_note(empty_hub: Path) -> None:
    assert not hub_reachable()
    fallback = preset_fallback(CARTOONIZE, {}, "limner-tiny-edit")
    assert fallback is not None
    assert fallback.model == "limner-tiny-edit"
    assert "instruction-tuning-sd/cartoonizer" in fallback.note
    assert "\n" not in fallback.note


def test_a_cached_model_or_the_users_own_model_wins(empty_hub: Path) -> None:
    snapshot = empty_hub / "models--instruction-tuning-sd--cartoonizer" / "snapshots" / "abc123"
    assert preset_fallback(CARTOONIZE, {"model": "my/model"}, "limner-tiny-edit") is None
    assert preset_fallback(CARTOONIZE.model_copy(update={"task": Task.TXT2IMG}), {}, "limner-tiny-edit") is None
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}", encoding="utf-8")
    (empty_hub / "models--instruction-tuning-sd--cartoonizer" / "refs").mkdir()
    (empty_hub / "models--instruction-tuning-sd--cartoonizer" / "refs" / "main").write_text("abc123")
    assert preset_fallback(CARTOONIZE, {}, "limner-tiny-edit") is None


def test_service_resolves_edits_to_the_edit_model(empty_hub: Path, settings: Settings, engine: Engine) -> None:
    """No model named: an edit uses limner-tiny-edit; the cartoonize preset too, offline, with the stand-in's
    own defaults instead of numbers tuned for the hub model."""
    service = GenerationService(settings, engine)
    picture = {"init_image": {"path": "pic.png"}}
    plain = service.resolve({"task": "edit", "prompt": "make it blue", **picture})
    assert plain.model == "limner-tiny-edit"
    assert (plain.width, plain.steps, plain.guidance_scale) == (64, 20, 5.0)
    assert service.resolve({"task": "txt2img", "prompt": "a fox"}).model == settings.default_model
    preset = service.resolve({"task": "edit", **picture}, preset="cartoonize")
    assert preset.model == "limner-tiny-edit"
    assert preset.prompt == "Cartoonize the following image"
    assert preset.guidance_scale == 5.0
    assert service.preset_fallback({}, "cartoonize") is not None
