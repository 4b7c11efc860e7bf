"""The API answers a text-to-image job on an SDXL refiner file with a 4xx naming the fix, and stores no job."""

from __future__ import annotations

from pathlib import Path

from limner.testing.single_file import write_refiner_header
from tests.api.conftest import Api


def test_a_refiner_file_for_text_to_image_is_a_4xx(api: Api, tmp_path: Path) -> None:
    headers = api.as_user("alice")  # an admin may name files on the server
    refiner = write_refiner_header(tmp_path / "sd_xl_refiner_1.0.safetensors")
    before = api.client.get("/v1/jobs", headers=headers).json()["total"]
    response = api.client.post("/v1/jobs", json={"prompt": "a fox", "model": str(refiner)}, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("unsupported_task", "model")
    assert "SDXL refiner, which does img2img only" in error["message"]
    assert "pass an input image" in error["message"]
    assert api.client.get("/v1/jobs", headers=headers).json()["total"] == before
