"""Saved characters over HTTP: create, use by name in a job, cached embeddings, ownership."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from limner.api.app import create_app
from limner.config import Settings
from limner.db.models import Role
from limner.engines.local.engine import LocalEngine
from limner.services.container import build_services
from tests.api.conftest import PASSWORD, Api, png_bytes, service_settings


@pytest.fixture(scope="module")
def character_api(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Iterator[Api]:
    adapter = str(tiny_models["ip_adapter"])
    settings = service_settings(tmp_path_factory.mktemp("characters"), tiny_models["txt2img"], ip_adapter=adapter)
    engine = LocalEngine(Settings(default_model=str(tiny_models["txt2img"]), device="cpu", ip_adapter=adapter,
                                  _env_file=None))  # type: ignore[call-arg]  # fmt: skip
    services = build_services(settings, engine=engine)
    with services.sessions() as session:
        services.users.create(session, "bob", PASSWORD, Role.USER)
        services.users.create(session, "carol", PASSWORD, Role.USER)
    with TestClient(create_app(settings, services)) as client:
        yield Api(client)


SCENE = {"task": "character", "prompt": "on the beach", "steps": 3, "seed": 4, "width": 64, "height": 64,
         "ip_adapter_scale": 0.9}  # fmt: skip


def result_pixels(api: Api, job: dict, user: str) -> bytes:
    finished = api.wait(job["id"], user)
    assert finished["status"] == "succeeded", finished
    data = api.client.get(f"/v1/images/{finished['result_image_ids'][0]}", headers=api.as_user(user)).content
    return Image.open(io.BytesIO(data)).tobytes()


def test_saved_character_reproduces_passing_the_pictures(character_api: Api) -> None:
    api, headers = character_api, character_api.as_user("bob")
    pictures = [("images", ("a.png", png_bytes(color="red"), "image/png")),
                ("images", ("b.png", png_bytes(color="navy"), "image/png"))]  # fmt: skip
    created = api.client.post("/v1/characters", data={"name": "hero", "weights": "[2, 1]"}, files=pictures,
                              headers=headers)  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["reference_weights"] == [2.0, 1.0]
    assert created.json()["cached_adapters"] == []

    by_name = api.client.post("/v1/jobs", json={**SCENE, "character": "hero"}, headers=headers).json()
    saved_pixels = result_pixels(api, by_name, "bob")
    cached = api.client.get("/v1/characters/hero", headers=headers).json()["cached_adapters"]
    assert len(cached) == 1
    image_id = api.wait(by_name["id"], "bob")["result_image_ids"][0]
    metadata = api.client.get(f"/v1/images/{image_id}/metadata", headers=headers).json()
    assert metadata["parameters"]["character"] == "hero"  # which saved character, with which adapter, made it
    assert metadata["parameters"]["ip_adapter"] == cached[0]

    uploads = [
        api.client.post("/v1/uploads", files={"file": (f"{color}.png", png_bytes(color=color), "image/png")},
                        headers=headers).json()["id"]
        for color in ("red", "navy")
    ]  # fmt: skip
    body = {**SCENE, "reference_weights": [2, 1], "reference_image_ids": uploads}
    direct = api.client.post("/v1/jobs", json=body, headers=headers).json()
    assert result_pixels(api, direct, "bob") == saved_pixels
    again = api.client.post("/v1/jobs", json={**SCENE, "character": "hero"}, headers=headers).json()
    assert result_pixels(api, again, "bob") == saved_pixels  # from the cached embedding


def test_characters_are_owned(character_api: Api) -> None:
    api = character_api
    api.client.post("/v1/characters", data={"name": "secret"}, files=[("images", ("a.png", png_bytes(), "image/png"))],
                    headers=api.as_user("bob"))  # fmt: skip
    carol = api.as_user("carol")
    assert api.client.get("/v1/characters/secret", headers=carol).status_code == 404
    assert api.client.delete("/v1/characters/secret", headers=carol).status_code == 404
    assert all(item["name"] != "secret" for item in api.client.get("/v1/characters", headers=carol).json())
    job = api.client.post("/v1/jobs", json={**SCENE, "character": "secret"}, headers=carol)
    assert job.status_code == 404


def test_character_validation(character_api: Api) -> None:
    api, headers = character_api, character_api.as_user("bob")
    tiff = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiff, format="TIFF")
    bad = api.client.post("/v1/characters", data={"name": "x"}, files=[("images", ("a.png", tiff.getvalue()))],
                          headers=headers)  # fmt: skip
    assert bad.status_code == 415
    duplicate = {"name": "twin"}
    files = [("images", ("a.png", png_bytes(), "image/png"))]
    assert api.client.post("/v1/characters", data=duplicate, files=files, headers=headers).status_code == 201
    assert api.client.post("/v1/characters", data=duplicate, files=files, headers=headers).status_code == 409
    weights = api.client.post("/v1/characters", data={"name": "w", "weights": "[1, 2]"}, files=files, headers=headers)
    assert weights.status_code == 400
    missing = api.client.post("/v1/jobs", json={"task": "character", "prompt": "x"}, headers=headers)
    assert missing.status_code == 400
    assert api.client.delete("/v1/characters/twin", headers=headers).status_code == 204


def test_validating_a_character_job_reads_no_picture(character_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking a job needs the character's picture sizes, not the decoded pictures (the worker decodes them)."""
    from limner.db.models import User
    from limner.services.gallery import Gallery

    api, headers = character_api, character_api.as_user("bob")
    files = [("images", ("a.png", png_bytes(color="teal"), "image/png"))]
    assert api.client.post("/v1/characters", data={"name": "sizes"}, files=files, headers=headers).status_code == 201
    opened: list[str] = []
    original = Gallery.open_input

    def spy(self: Gallery, session: Any, owner: Any, image_id: str, mode: str) -> Any:
        opened.append(image_id)
        return original(self, session, owner, image_id, mode)

    monkeypatch.setattr(Gallery, "open_input", spy)
    services = api.client.app.state.services  # type: ignore[attr-defined]
    request = services.generation.resolve({**SCENE, "character": "sizes"})
    with services.sessions() as session:
        bob = session.query(User).filter_by(username="bob").one()
    inputs = services.generation_jobs.source(bob.id).task_inputs(request, decode=False)
    assert [picture.size for picture in inputs.reference_images] == [(64, 64)]
    assert opened == []
    assert services.generation_jobs.source(bob.id).task_inputs(request).reference_images[0].size == (64, 64)
    assert len(opened) == 1  # decoding still reads it
