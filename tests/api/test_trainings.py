"""Training over HTTP: a zip in, a queued job, a registered LoRA usable by name."""

from __future__ import annotations

import io
import json
import zipfile

from tests.api.conftest import Api, png_bytes

CONFIG = {"instance_prompt": "a sks emoji", "steps": 4, "rank": 4, "checkpoint_every": 2, "validation_every": 2}


def dataset(entries: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in (entries or {"a.png": png_bytes(color="red"), "b.png": png_bytes(color="pink")}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_training_job_registers_a_lora(api: Api) -> None:
    headers = api.as_user("bob")
    form = {"name": "bobs-style", "config": json.dumps(CONFIG)}
    created = api.client.post("/v1/trainings", data=form, files={"dataset": ("d.zip", dataset())}, headers=headers)
    assert created.status_code == 202, created.text
    job = api.wait(created.json()["id"], "bob", timeout=120)
    assert job["status"] == "succeeded", job["error"]
    assert job["kind"] == "train"
    assert len(job["result_image_ids"]) == 2  # validation pictures at steps 2 and 4
    model = api.client.get("/v1/models/bobs-style", headers=headers).json()
    assert model["kind"] == "lora"
    assert model["details"]["steps"] == 4
    styled = api.client.post("/v1/jobs", json={"prompt": "a sks emoji", "loras": [{"ref": "bobs-style"}], "steps": 2,
                                               "width": 64, "height": 64}, headers=headers).json()  # fmt: skip
    assert api.wait(styled["id"], "bob")["status"] == "succeeded"
    listed = api.client.get("/v1/trainings", headers=headers).json()["items"]
    assert [item["id"] for item in listed] == [job["id"]]
    assert api.client.get(f"/v1/trainings/{job['id']}", headers=api.as_user("carol")).status_code == 404


def test_bad_trainings_are_refused_and_not_queued(api: Api) -> None:
    headers = api.as_user("carol")
    before = api.client.get("/v1/jobs", headers=headers).json()["total"]
    evil = dataset({"../../escape.png": png_bytes()})
    cases = [
        ({"name": "x1", "config": json.dumps(CONFIG)}, evil, "outside"),
        ({"name": "x2", "config": "{not json"}, dataset(), "JSON"),
        ({"name": "x3", "config": json.dumps({"steps": 2})}, dataset(), "instance_prompt"),
        ({"name": "limner-tiny", "config": json.dumps(CONFIG)}, dataset(), "name"),
        ({"name": "x4", "config": json.dumps(CONFIG)}, b"not a zip", "zip"),
        ({"name": "x5", "config": json.dumps(CONFIG)}, dataset({"a.png": b"<svg/>"}), "PNG"),
    ]
    for form, data, fragment in cases:
        response = api.client.post("/v1/trainings", data=form, files={"dataset": ("d.zip", data)}, headers=headers)
        assert 400 <= response.status_code < 500, (form, response.text)
        assert fragment in response.text, (form, response.text)
    assert api.client.get("/v1/jobs", headers=headers).json()["total"] == before
