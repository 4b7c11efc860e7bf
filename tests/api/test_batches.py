"""Batches over the API: ideas -> one job each -> progress -> a zip like `limner batch` writes."""

from __future__ import annotations

import io
import json
import time
import zipfile

from tests.api.conftest import Api


def wait_batch(api: Api, batch_id: str, user: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        batch = api.client.get(f"/v1/batches/{batch_id}", headers=api.as_user(user)).json()
        if batch["progress"]["done"]:
            return batch
        time.sleep(0.1)
    raise AssertionError("batch did not finish")


def test_offline_batch_end_to_end(api: Api) -> None:
    headers = api.as_user("bob")
    body = {"count": 3, "theme": "lighthouses", "offline": True, "idea_seed": 1, "size": "64x64", "steps": 2, "seed": 5}
    created = api.client.post("/v1/batches", json=body, headers=headers)
    assert created.status_code == 202, created.text
    batch = created.json()
    assert len(batch["items"]) == 3
    assert "offline" in batch["source"]
    assert len({item["job_id"] for item in batch["items"]}) == 3
    finished = wait_batch(api, batch["id"], "bob")
    assert finished["progress"]["by_status"]["succeeded"] == 3
    archive = zipfile.ZipFile(io.BytesIO(api.client.get(finished["download_url"], headers=headers).content))
    names = archive.namelist()
    for item in finished["items"]:
        folder = item["folder"]
        assert f"{folder}/info.md" in names
        info = json.loads(archive.read(f"{folder}/info.json"))
        assert info["prompt"] == item["idea"]["prompt"]
        assert [image["file"] for image in info["images"]] == [
            name.split("/", 1)[1] for name in names if name.startswith(f"{folder}/") and name.endswith(".png")
        ]
    assert json.loads(archive.read("batch.json"))["batch_id"] == batch["id"]


def test_batch_from_prompts_with_a_failing_item(api: Api) -> None:
    headers = api.as_user("bob")
    body = {"prompts": ["a red kite", "a blue boat"], "size": "64x64", "steps": 2}
    batch = api.client.post("/v1/batches", json=body, headers=headers).json()
    first_job = batch["items"][0]["job_id"]
    api.client.post(f"/v1/jobs/{first_job}/cancel", headers=headers)
    finished = wait_batch(api, batch["id"], "bob")
    statuses = sorted(item["status"] for item in finished["items"])
    assert statuses in (["canceled", "succeeded"], ["succeeded", "succeeded"])
    archive = zipfile.ZipFile(io.BytesIO(api.client.get(finished["download_url"], headers=headers).content))
    summary = json.loads(archive.read("batch.json"))
    assert len(summary["items"]) == 2


def test_batches_are_owned_and_validated(api: Api) -> None:
    batch = api.client.post("/v1/batches", json={"prompts": ["x"], "size": "64x64", "steps": 2},
                            headers=api.as_user("bob")).json()  # fmt: skip
    assert api.client.get(f"/v1/batches/{batch['id']}", headers=api.as_user("carol")).status_code == 404
    assert api.client.get(f"/v1/batches/{batch['id']}/download", headers=api.as_user("carol")).status_code == 404
    bad = api.client.post("/v1/batches", json={"prompts": ["x"], "size": "65x64"}, headers=api.as_user("bob"))
    assert bad.status_code == 400
    too_many = api.client.post("/v1/batches", json={"count": 1000}, headers=api.as_user("bob"))
    assert too_many.status_code == 400
    wait_batch(api, batch["id"], "bob")


def test_prompt_ideas_endpoint(api: Api) -> None:
    body = {"count": 3, "theme": "foxes", "offline": True, "seed": 4}
    first = api.client.post("/v1/prompts/ideas", json=body, headers=api.as_user("bob"))
    assert first.status_code == 200, first.text
    again = api.client.post("/v1/prompts/ideas", json=body, headers=api.as_user("bob")).json()
    assert first.json()["offline"] is True
    assert len(first.json()["ideas"]) == 3
    assert first.json()["ideas"] == again["ideas"]
    assert api.client.post("/v1/prompts/ideas", json={"count": 0}, headers=api.as_user("bob")).status_code == 400
