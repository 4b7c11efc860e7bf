"""Upscale, outpaint and hires-fix jobs over ``POST /v1/jobs``: the same service path as every job."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from limner.testing.tiny_models import build_tiny_upscaler
from tests.api.conftest import Api


def upload(api: Api, user: str, size: tuple[int, int]) -> str:
    picture = Image.fromarray((np.random.default_rng(1).random((size[1], size[0], 3)) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    response = api.client.post("/v1/uploads", files={"file": ("p.png", buffer.getvalue(), "image/png")},
                               headers=api.as_user(user))  # fmt: skip
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


def result_image(api: Api, user: str, body: dict[str, object]) -> tuple[dict[str, object], Image.Image]:
    response = api.client.post("/v1/jobs", json=body, headers=api.as_user(user))
    assert response.status_code == 202, response.text
    job = api.wait(response.json()["id"], user)
    assert job["status"] == "succeeded", job
    image_id = job["result_image_ids"][0]
    data = api.client.get(f"/v1/images/{image_id}", headers=api.as_user(user)).content
    return job, Image.open(io.BytesIO(data))


@pytest.fixture(scope="module")
def upscaler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_upscaler(tmp_path_factory.mktemp("upscalers") / "tiny-x2.safetensors", "compact", 2)


def test_an_upscale_job_enlarges_an_upload(api: Api, upscaler: Path) -> None:
    image_id = upload(api, "alice", (40, 24))  # alice is an admin: she may name a file on the server
    body = {"task": "upscale", "init_image_id": image_id, "upscaler": str(upscaler), "upscale_factor": 2}
    job, image = result_image(api, "alice", body)
    assert image.size == (80, 48)
    assert job["task"] == "upscale"
    metadata = api.client.get(f"/v1/images/{job['result_image_ids'][0]}/metadata", headers=api.as_user("alice"))
    assert metadata.status_code == 200
    assert str(upscaler) in metadata.text


def test_an_outpaint_job_keeps_the_upload(api: Api) -> None:
    image_id = upload(api, "bob", (32, 32))
    body = {"task": "outpaint", "prompt": "a beach", "steps": 2, "init_image_id": image_id, "outpaint": {"left": 16}}
    _, image = result_image(api, "bob", body)
    assert image.size == (48, 32)


def test_a_hires_job_has_the_final_size(api: Api) -> None:
    body = {"prompt": "a fox", "steps": 2, "seed": 1, "width": 32, "height": 32, "hires_scale": 2,
            "hires_upscaler": "lanczos"}  # fmt: skip
    _, image = result_image(api, "bob", body)
    assert image.size == (64, 64)


def test_bad_finishing_jobs_are_4xx_and_not_stored(api: Api, upscaler: Path) -> None:
    image_id = upload(api, "carol", (32, 32))
    before = api.client.get("/v1/jobs", headers=api.as_user("carol")).json()["total"]
    cases = [
        ({"task": "upscale", "init_image_id": image_id}, "upscaler"),
        ({"task": "upscale", "init_image_id": image_id, "upscaler": "weights/4x.pth"}, "upscaler"),
        ({"task": "upscale", "init_image_id": image_id, "upscaler": str(upscaler)}, "upscaler"),  # a server path
        ({"task": "outpaint", "init_image_id": image_id, "outpaint": {}}, "outpaint"),
        ({"task": "outpaint", "init_image_id": image_id}, "outpaint"),
        ({"task": "img2img", "prompt": "x", "init_image_id": image_id, "hires_scale": 2}, "hires_scale"),
        ({"prompt": "x", "width": 2048, "height": 2048, "hires_scale": 2}, "hires_scale"),
        ({"prompt": "x", "hires_scale": 2, "hires_upscaler": "/etc/passwd.safetensors"}, "hires_upscaler"),
    ]
    for body, fragment in cases:
        response = api.client.post("/v1/jobs", json=body, headers=api.as_user("carol"))
        assert 400 <= response.status_code < 500, (body, response.text)
        error = response.json()["error"]
        assert fragment in error["message"] + str(error["param"]), (body, error)
    assert api.client.get("/v1/jobs", headers=api.as_user("carol")).json()["total"] == before
