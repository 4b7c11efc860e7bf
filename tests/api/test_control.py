"""Controls over the API: upload ids as control pictures, ownership, and bad controls as 4xx (never stored)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from limner.testing.tiny_control import build_tiny_controlnet
from tests.api.conftest import Api


@pytest.fixture(scope="module")
def controlnet(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_controlnet(tiny_models["txt2img"], tmp_path_factory.mktemp("api-control") / "controlnet")


def upload(api: Api, user: str) -> str:
    picture = Image.new("RGB", (64, 64), "white")
    picture.paste((0, 0, 0), (16, 16, 48, 48))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    files = {"file": ("square.png", buffer.getvalue(), "image/png")}
    response = api.client.post("/v1/uploads", files=files, headers=api.as_user(user))
    assert response.status_code in (200, 201), response.text
    image_id: str = response.json()["id"]
    return image_id


def job(controls: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"prompt": "a house", "steps": 2, "width": 64, "height": 64, "seed": 1, "controls": controls, **fields}


def test_a_job_with_two_controls(api: Api, controlnet: Path) -> None:
    image_id = upload(api, "alice")  # an admin may name a ControlNet folder on the server
    second = {"image_id": image_id, "model": str(controlnet), "type": "lineart", "weight": 0.5, "end": 0.5}
    controls = [{"image_id": image_id, "model": str(controlnet)}, second]
    response = api.client.post("/v1/jobs", json=job(controls, guess_mode=True), headers=api.as_user("alice"))
    assert response.status_code == 202, response.text
    finished = api.wait(response.json()["id"], "alice")
    assert finished["status"] == "succeeded", finished
    recorded = finished["request"]["controls"]
    assert [(c["image"]["image_id"], c["type"], c["weight"]) for c in recorded] == [
        (image_id, "canny", 1.0),
        (image_id, "lineart", 0.5),
    ]
    assert finished["request"]["guess_mode"] is True


def test_bad_controls_are_refused_and_not_stored(api: Api, controlnet: Path) -> None:
    bob = api.as_user("bob")
    before = api.client.get("/v1/jobs", headers=bob).json()["total"]
    mine = upload(api, "bob")
    cases = [
        ([{"image_id": mine, "model": "a/b", "type": "edges"}], 400, "type"),
        ([{"image_id": mine, "model": "a/b", "weight": 9}], 400, "weight"),
        ([{"image_id": mine, "model": "a/b", "start": 0.7, "end": 0.2}], 400, "must come before"),
        ([{"image_id": mine, "model": "a/b", "type": "pose"}], 400, "OpenPose"),
        ([{"image_id": mine, "model": "a/b", "type": "depth"}], 400, "LIMNER_DEPTH_MODEL"),
        ([{"image_id": mine, "model": str(controlnet)}], 400, "not a model you can use here"),  # no server paths
        ([{"image_id": mine, "model": "a/b/c.ckpt"}], 400, "controls"),
        ([{"image_id": mine}], 400, "model"),
        ([{"image_id": mine, "model": "a/b"}] * 5, 400, "controls"),
    ]
    for controls, status, fragment in cases:
        response = api.client.post("/v1/jobs", json=job(controls), headers=bob)
        assert response.status_code == status, (controls, response.text)
        assert fragment in response.text, (controls, response.text)
    edit = job([{"image_id": mine, "model": "a/b"}], task="edit")
    assert api.client.post("/v1/jobs", json=edit, headers=bob).status_code == 400
    assert api.client.get("/v1/jobs", headers=bob).json()["total"] == before


def test_another_users_upload_cannot_be_a_control(api: Api) -> None:
    theirs = upload(api, "carol")
    response = api.client.post("/v1/jobs", json=job([{"image_id": theirs, "model": "a/b"}]), headers=api.as_user("bob"))
    assert response.status_code == 404, response.text
