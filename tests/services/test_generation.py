"""The generation service: one order of defaults, one model resolver, registered names everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.requests import LoraSpec
from limner.engines.local.engine import LocalEngine
from limner.model_defaults import load_model_defaults
from limner.presets import load_presets
from limner.services.generation import GenerationService, RegisteredName, registered_aliases
from limner.weights import LIMNER_TINY_DEFAULTS


class FakeRegistry:
    """A model registry with fixed entries (the real one is tested through the API and the CLI)."""

    def __init__(self, *entries: RegisteredName) -> None:
        self.entries = {entry.name: entry for entry in entries}

    def __call__(self, name: str) -> RegisteredName | None:
        return self.entries.get(name)


def tiny_settings(**overrides: object) -> Settings:
    return Settings(default_model="limner-tiny", device="cpu", _env_file=None, **overrides)  # type: ignore[call-arg, arg-type]


def test_limner_tiny_defaults_are_the_same_from_every_route() -> None:
    service = GenerationService(tiny_settings(), engine=LocalEngine(tiny_settings()))
    plain = service.resolve({"prompt": "red heart"})
    named = service.resolve({"prompt": "red heart", "model": "limner-tiny"})
    preset = service.resolve({"prompt": "red heart"}, preset="tiny")
    for request in (plain, named, preset):
        assert (request.model, request.steps, request.guidance_scale) == ("limner-tiny", 20, 4.0)
        assert (request.width, request.height) == (64, 64)
    assert LIMNER_TINY_DEFAULTS == {"num_inference_steps": 20, "guidance_scale": 4.0, "width": 64, "height": 64}
    assert "steps" not in load_presets()["tiny"].model_dump(exclude_none=True)


def test_the_users_values_win_over_preset_style_and_model_defaults() -> None:
    service = GenerationService(tiny_settings(), engine=LocalEngine(tiny_settings()))
    request = service.resolve({"prompt": "x", "steps": 3, "guidance_scale": 1.5, "width": 32, "height": 32}, "tiny")
    assert (request.steps, request.guidance_scale, request.width, request.height) == (3, 1.5, 32, 32)


def test_an_unlisted_model_keeps_the_generic_defaults(tiny_models: dict[str, Path]) -> None:
    settings = tiny_settings()
    service = GenerationService(settings, engine=LocalEngine(settings))
    request = service.resolve({"prompt": "x", "model": str(tiny_models["txt2img"])})
    assert (request.steps, request.guidance_scale, request.width) == (25, 7.0, None)


def test_a_user_defaults_file_adds_a_model(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    model = str(tiny_models["txt2img"])
    table = tmp_path / "defaults.toml"
    table.write_text(f'["{model}"]\nsteps = 3\nguidance_scale = 2.0\n', encoding="utf-8")
    settings = tiny_settings(model_defaults_file=table)
    assert model in load_model_defaults(table)
    request = GenerationService(settings, LocalEngine(settings)).resolve({"prompt": "x", "model": model})
    assert (request.steps, request.guidance_scale) == (3, 2.0)


def test_a_registered_lora_name_is_its_base_model_with_the_lora(tiny_models: dict[str, Path]) -> None:
    lookup = FakeRegistry(RegisteredName("dogs", str(tiny_models["lora"]), is_lora=True, base_model="limner-tiny"))
    settings = tiny_settings()
    service = GenerationService(settings, LocalEngine(settings, aliases=registered_aliases(lookup)), lookup)
    request = service.resolve({"prompt": "a dog", "model": "dogs", "loras": [LoraSpec(ref="x.safetensors")]})
    assert request.model == "limner-tiny"
    assert [lora.ref for lora in request.loras] == ["dogs", "x.safetensors"]
    assert request.steps == 20  # the base model's defaults


def test_a_registered_lora_runs_and_changes_the_picture(tiny_models: dict[str, Path]) -> None:
    base = str(tiny_models["txt2img"])
    lookup = FakeRegistry(RegisteredName("dogs", str(tiny_models["lora"]), is_lora=True, base_model=base))
    settings = tiny_settings()
    service = GenerationService(settings, LocalEngine(settings, aliases=registered_aliases(lookup)), lookup)
    fields = {"prompt": "a dog", "steps": 2, "seed": 3, "width": 32, "height": 32}
    with_lora = service.run(service.prepare({**fields, "model": "dogs"})).images[0]
    without = service.run(service.prepare({**fields, "model": base})).images[0]
    assert with_lora.record.request.loras[0].ref == "dogs"
    assert _pixels(with_lora.image) != _pixels(without.image)


def test_a_registered_name_wins_over_a_same_named_folder(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dogs").mkdir()  # an unrelated folder in the working directory
    monkeypatch.chdir(tmp_path)
    lookup = FakeRegistry(RegisteredName("dogs", str(tiny_models["txt2img"])))
    settings = tiny_settings()
    service = GenerationService(settings, LocalEngine(settings, aliases=registered_aliases(lookup)), lookup)
    service.prepare({"prompt": "x", "model": "dogs", "steps": 1})  # the folder would fail: no model_index.json
    with pytest.raises(InvalidRequestError, match="not a diffusers model"):
        service.prepare({"prompt": "x", "model": "./dogs", "steps": 1})


def test_limits_are_checked_at_resolve() -> None:
    settings = tiny_settings(max_steps=10)
    with pytest.raises(InvalidRequestError, match="at most 10 steps"):
        GenerationService(settings, LocalEngine(settings)).resolve({"prompt": "x", "steps": 11})


def test_settings_cannot_allow_more_images_than_a_request_holds() -> None:
    with pytest.raises(ValueError, match="less than or equal to 16"):
        tiny_settings(max_images_per_request=64)


def _pixels(image: Image.Image) -> bytes:
    return image.tobytes()


def test_the_defaults_table_is_parsed_once_until_the_users_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import limner.services.generation as generation

    parsed: list[object] = []
    load = generation.load_model_defaults

    def counted(path: Path | None = None) -> object:
        parsed.append(path)
        return load(path)

    monkeypatch.setattr(generation, "load_model_defaults", counted)
    table = tmp_path / "defaults.toml"
    table.write_text('["mine"]\nsteps = 3\n', encoding="utf-8")
    settings = tiny_settings(model_defaults_file=table)
    service = GenerationService(settings, engine=LocalEngine(settings))
    for _ in range(3):
        assert service.resolve({"prompt": "x"}).steps == 20
    assert service.defaults_for("mine").steps == 3
    assert len(parsed) == 1
    table.write_text('["mine"]\nsteps = 4\nguidance_scale = 2.0\n', encoding="utf-8")  # another size
    assert service.defaults_for("mine").steps == 4
    assert len(parsed) == 2
