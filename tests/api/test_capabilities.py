"""GET /v1/capabilities: tasks per model from config files, and a sentence for each missing capability."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from limner.config import Settings
from limner.db.models import RegisteredModel
from limner.presets import load_presets
from limner.services.capabilities import server_capabilities
from limner.styles import load_styles
from tests.api.conftest import Api

_FORBIDDEN = ("LIMNER_", "_API_KEY", "_API_TOKEN", "--", "secret")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _settings(tiny_models: dict[str, Path], **overrides: object) -> Settings:
    return Settings(default_model=str(tiny_models["txt2img"]), _env_file=None, **overrides)  # type: ignore[call-arg,arg-type]


def test_the_default_offline_server_says_character_is_missing(api: Api, tiny_models: dict[str, Path]) -> None:
    """Edits run on the built-in limner-tiny-edit (the cartoonize preset too, in its hub model's place)."""
    response = api.client.get("/v1/capabilities", headers=api.as_user("bob"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tasks"] == {"txt2img": True, "img2img": True, "inpaint": True, "edit": True, "character": False}
    default = body["models"][0]
    assert default["default"]
    assert default["checked"]
    assert default["family"] == "sd"
    assert default["tasks"] == ["txt2img", "img2img", "inpaint"]
    assert body["default_model"] == "tiny-txt2img"  # a folder name, never the server path
    assert str(tiny_models["txt2img"]) not in response.text
    missing = {item["capability"]: item["reason"] for item in body["missing"]}
    assert set(missing) == {"character", "providers"}
    assert [model["name"] for model in body["models"]] == ["tiny-txt2img"]  # pickers list models for every task
    for reason in missing.values():
        assert reason.endswith(".")
        assert not any(word in reason for word in _FORBIDDEN)
    assert "IP-Adapter" in missing["character"]
    presets = {item["name"]: item for item in body["presets"]}
    assert presets["tiny"]["available"]
    assert presets["cartoonize"]["available"]
    assert "runs on limner-tiny-edit" in presets["cartoonize"]["reason"]
    assert not presets["instantcharacter"]["available"]
    styles = {item["name"]: item for item in body["styles"]}
    assert styles["watercolor"]["available"]
    assert not styles["ghibli"]["available"]
    assert body["providers"] == []
    assert body["loras"] == []


def test_registered_edit_model_and_lora_are_read_from_configs(api: Api, tiny_models: dict[str, Path]) -> None:
    admin = api.as_user("alice")
    for body in (
        {"path": str(tiny_models["edit"]), "name": "cartoons"},
        {"path": str(tiny_models["lora"]), "name": "dogs", "base_model": str(tiny_models["txt2img"])},
    ):
        created = api.client.post("/v1/models/import", json=body, headers=admin)
        assert created.status_code == 201, created.text
    body = api.client.get("/v1/capabilities", headers=api.as_user("bob")).json()
    models = {item["name"]: item for item in body["models"]}
    assert models["cartoons"]["tasks"] == ["edit"]
    assert models["dogs"]["kind"] == "lora"
    assert models["dogs"]["tasks"] == ["txt2img", "img2img", "inpaint"]
    assert models["dogs"]["base_model"] == "tiny-txt2img"
    assert body["tasks"]["edit"] is True
    assert "edit" not in {item["capability"] for item in body["missing"]}
    assert body["loras"] == ["dogs"]


def test_capabilities_need_a_login(api: Api) -> None:
    response = api.client.get("/v1/capabilities")
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"type", "code", "message"}


def test_an_ip_adapter_setting_gives_every_sd_model_characters(tiny_models: dict[str, Path]) -> None:
    settings = _settings(tiny_models, ip_adapter=str(tiny_models["ip_adapter"]))
    answer = server_capabilities(settings, [], load_presets(), load_styles())
    assert answer.tasks["character"]
    assert answer.character_adapter
    assert "character" in answer.models[0].tasks
    assert "character" not in {item.capability for item in answer.missing}


def test_providers_are_named_never_their_keys(tiny_models: dict[str, Path]) -> None:
    settings = _settings(tiny_models, replicate_api_token=SecretStr("r8_very_secret"))
    answer = server_capabilities(settings, [], load_presets(), load_styles())
    assert answer.providers == ("replicate",)
    assert answer.tasks["character"]  # the remote InstantCharacter preset runs there
    presets = {offer.name: offer for offer in answer.presets}
    assert presets["instantcharacter"].available
    assert "r8_very_secret" not in repr(answer)


def test_an_inpaint_only_model_offers_inpaint_only(tiny_models: dict[str, Path]) -> None:
    model = RegisteredModel(name="fill", kind="base", architecture="unknown", reference=str(tiny_models["inpaint"]))
    answer = server_capabilities(_settings(tiny_models), [model], load_presets(), load_styles())
    assert {item.name: item.tasks for item in answer.models}["fill"] == ("inpaint",)


def test_models_say_the_size_they_make_by_default(api: Api) -> None:
    body = api.client.get("/v1/capabilities", headers=api.as_user("bob")).json()
    default = body["models"][0]
    assert default["width"] == default["height"]
    assert default["width"] % 8 == 0


def test_single_files_show_the_tasks_their_header_allows(tmp_path: Path) -> None:
    """An inpainting file is listed for inpaint only and an SDXL refiner without text-to-image, from the
    header alone, as the engine then enforces (before, every file was listed as an unchecked SD model)."""
    from limner.services.capabilities import model_shape
    from limner.testing.single_file import write_refiner_header, write_tiny_single_file

    inpainting = tmp_path / "my-inpainting.safetensors"
    write_tiny_single_file("sd15-inpainting", inpainting, tmp_path / "configs")
    shape = model_shape(str(inpainting))
    assert (shape.family, shape.tasks, shape.checked) == ("sd", ("inpaint",), True)
    refiner = model_shape(str(write_refiner_header(tmp_path / "refiner.safetensors")))
    assert (refiner.family, refiner.tasks) == ("sdxl", ("img2img", "inpaint"))
    base = tmp_path / "sd15.safetensors"
    write_tiny_single_file("sd15", base, tmp_path / "configs")
    assert model_shape(str(base)).tasks == ("txt2img", "img2img", "inpaint")
    assert model_shape(str(tmp_path / "missing.safetensors")).checked is False
