"""Jobs over HTTP: create, follow, cancel, idempotency, sync PNG, ownership."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from limner.services.jobs.queue import JobQueue
from tests.api.conftest import Api, png_bytes
from tests.services.db_events import sql_statements

TXT2IMG = {"prompt": "a red fox", "steps": 2, "seed": 3, "width": 64, "height": 64}


def test_create_returns_202_with_id_and_position(api: Api) -> None:
    response = api.client.post("/v1/jobs", json=TXT2IMG, headers=api.as_user("bob"))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] in ("queued", "running", "succeeded")
    assert response.headers["Location"] == f"/v1/jobs/{body['id']}"
    job = api.wait(body["id"], "bob")
    assert job["status"] == "succeeded"
    assert len(job["result_image_ids"]) == 1
    assert job["progress"] == 1.0
    image = api.client.get(f"/v1/images/{job['result_image_ids'][0]}", headers=api.as_user("bob"))
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


def test_same_seed_gives_identical_images_through_the_queue(api: Api) -> None:
    ids = []
    for _ in range(2):
        job = api.client.post("/v1/jobs", json=TXT2IMG, headers=api.as_user("bob")).json()
        ids.append(api.wait(job["id"], "bob")["result_image_ids"][0])
    files = [api.client.get(f"/v1/images/{image_id}", headers=api.as_user("bob")).content for image_id in ids]
    import io

    from PIL import Image

    pixels = [Image.open(io.BytesIO(data)).tobytes() for data in files]
    assert pixels[0] == pixels[1]


def test_sync_png_with_accept_header(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[str] = []
    position = JobQueue.position
    monkeypatch.setattr(
        JobQueue, "position", lambda queue, session, job: counted.append(job.id) or position(queue, session, job)
    )
    response = api.client.post("/v1/jobs", json=TXT2IMG, headers={**api.as_user("bob"), "Accept": "image/png"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    assert response.headers["X-Limner-Job-Id"]
    assert counted == []  # the answer is the picture: no place in line is counted for it


def test_idempotency_key_returns_the_same_job(api: Api) -> None:
    headers = {**api.as_user("bob"), "Idempotency-Key": "order-42"}
    first = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers)
    second = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers)
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    other_user = api.client.post(
        "/v1/jobs", json=TXT2IMG, headers={**api.as_user("carol"), "Idempotency-Key": "order-42"}
    )
    assert other_user.json()["id"] != first.json()["id"]


def test_img2img_with_an_upload_id_records_a_typed_image_reference(api: Api) -> None:
    headers = api.as_user("bob")
    upload = api.client.post("/v1/uploads", files={"file": ("photo.png", png_bytes(), "image/png")}, headers=headers)
    body = {"task": "img2img", "prompt": "night", "steps": 2, "strength": 0.5, "init_image_id": upload.json()["id"]}
    response = api.client.post("/v1/jobs", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job = api.wait(response.json()["id"], "bob")
    assert job["status"] == "succeeded", job
    assert job["request"]["init_image"] == {"image_id": upload.json()["id"], "path": None}


def test_a_multipart_job_is_refused_with_the_way_to_upload(api: Api) -> None:
    before = api.client.get("/v1/jobs", headers=api.as_user("bob")).json()["total"]
    files = {"init_image": ("photo.png", png_bytes(), "image/png")}
    form = {"request": json.dumps({"task": "img2img", "prompt": "night", "steps": 2, "strength": 0.5})}
    response = api.client.post("/v1/jobs", data=form, files=files, headers=api.as_user("bob"))
    assert response.status_code == 415, response.text
    assert "/v1/uploads" in response.json()["error"]["message"]
    assert api.client.get("/v1/jobs", headers=api.as_user("bob")).json()["total"] == before


def test_inpaint_with_ids_of_uploads(api: Api) -> None:
    headers = api.as_user("bob")
    image_id = api.client.post("/v1/uploads", files={"file": ("a.png", png_bytes(), "image/png")}, headers=headers)
    mask_id = api.client.post("/v1/uploads", files={"file": ("m.png", png_bytes(color="white"), "image/png")},
                              headers=headers)  # fmt: skip
    body = {"task": "inpaint", "prompt": "a door", "steps": 2, "init_image_id": image_id.json()["id"],
            "mask_image_id": mask_id.json()["id"]}  # fmt: skip
    job = api.wait(api.client.post("/v1/jobs", json=body, headers=headers).json()["id"], "bob")
    assert job["status"] == "succeeded"


def test_another_users_upload_cannot_be_used(api: Api) -> None:
    upload = api.client.post("/v1/uploads", files={"file": ("a.png", png_bytes(), "image/png")},
                             headers=api.as_user("bob")).json()  # fmt: skip
    body = {"task": "img2img", "prompt": "x", "init_image_id": upload["id"]}
    response = api.client.post("/v1/jobs", json=body, headers=api.as_user("carol"))
    assert response.status_code == 404


def test_invalid_jobs_are_rejected_and_not_stored(api: Api) -> None:
    headers = api.as_user("carol")
    before = api.client.get("/v1/jobs", headers=headers).json()["total"]
    cases = [
        ({"prompt": "x", "width": 65, "height": 64}, "width"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "steps": 0}, "steps"),
        ({"prompt": "x", "model": "weights.ckpt"}, "model"),
        ({"prompt": "x", "task": "img2img"}, "input image"),
        ({"prompt": "x", "owner_id": "someone"}, "owner_id"),
        ({"prompt": "x", "status": "succeeded"}, "status"),
        ({"prompt": "x", "preset": "nope"}, "preset"),
        ({"prompt": "x", "webhook_url": "not a url"}, "webhook_url"),
    ]
    for body, fragment in cases:
        response = api.client.post("/v1/jobs", json=body, headers=headers)
        assert 400 <= response.status_code < 500, (body, response.text)
        error = response.json()["error"]
        assert set(error) == {"type", "code", "message", "param"}
        assert fragment in (error["message"] + str(error["param"])), (body, error)
    assert api.client.post("/v1/jobs", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
                           ).status_code == 400  # fmt: skip
    assert api.client.get("/v1/jobs", headers=headers).json()["total"] == before


def test_list_and_filter_my_jobs(api: Api) -> None:
    headers = api.as_user("carol")
    job = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers).json()
    api.wait(job["id"], "carol")
    page = api.client.get("/v1/jobs", params={"status": "succeeded", "limit": 1}, headers=headers).json()
    assert page["limit"] == 1
    assert len(page["items"]) == 1
    assert all(item["status"] == "succeeded" for item in page["items"])
    bobs = api.client.get("/v1/jobs", headers=api.as_user("bob")).json()["items"]
    assert job["id"] not in {item["id"] for item in bobs}


def test_other_users_job_is_404_and_admin_sees_it(api: Api) -> None:
    job = api.client.post("/v1/jobs", json=TXT2IMG, headers=api.as_user("bob")).json()
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=api.as_user("carol")).status_code == 404
    assert api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=api.as_user("carol")).status_code == 404
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=api.as_user("alice")).status_code == 200
    api.wait(job["id"], "bob")


def test_cancel_a_running_job(api: Api) -> None:
    headers = api.as_user("bob")
    body = {**TXT2IMG, "steps": 400, "width": 128, "height": 128}
    job = api.client.post("/v1/jobs", json=body, headers=headers).json()
    deadline = time.monotonic() + 30
    while api.client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["step"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    canceled = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    assert canceled.status_code == 200
    final = api.wait(job["id"], "bob")
    assert final["status"] == "canceled"
    assert final["step"] < 400
    again = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    assert again.status_code == 409


def test_deadline_fails_a_long_job_with_a_reason(api: Api) -> None:
    body = {**TXT2IMG, "steps": 1000, "width": 128, "height": 128, "deadline_seconds": 0.3}
    job = api.client.post("/v1/jobs", json=body, headers=api.as_user("bob")).json()
    final = api.wait(job["id"], "bob")
    assert final["status"] == "failed"
    assert final["error"]["code"] == "deadline_exceeded"


def test_server_sent_events_follow_a_job(api: Api) -> None:
    headers = api.as_user("bob")
    job = api.client.post("/v1/jobs", json={**TXT2IMG, "steps": 5}, headers=headers).json()
    events = []
    with api.client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "succeeded"
    assert events[-1]["result_image_ids"]


def test_websocket_follows_a_job(api: Api) -> None:
    token = api.as_user("bob")["Authorization"].removeprefix("Bearer ")
    job = api.client.post("/v1/jobs", json={**TXT2IMG, "steps": 5}, headers=api.as_user("bob")).json()
    received = []
    with api.client.websocket_connect(f"/v1/jobs/{job['id']}/ws?token={token}") as socket:
        while True:
            event = socket.receive_json()
            received.append(event)
            if event["status"] in ("succeeded", "failed", "canceled"):
                break
    assert received[-1]["status"] == "succeeded"


def test_health_never_waits_for_generation(api: Api) -> None:
    headers = api.as_user("bob")
    job = api.client.post("/v1/jobs", json={**TXT2IMG, "steps": 200, "width": 128, "height": 128},
                          headers=headers).json()  # fmt: skip
    latencies = []
    for _ in range(10):
        started = time.perf_counter()
        assert api.client.get("/healthz").status_code == 200
        assert api.client.get("/v1/images", headers=headers).status_code == 200
        latencies.append(time.perf_counter() - started)
    api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
    api.wait(job["id"], "bob")
    assert max(latencies) < 2.0


def test_concurrent_submissions_each_get_their_own_images(api: Api) -> None:
    headers = api.as_user("carol")
    ids: list[str] = []

    def submit(seed: int) -> None:
        ids.append(api.client.post("/v1/jobs", json={**TXT2IMG, "seed": seed}, headers=headers).json()["id"])

    threads = [threading.Thread(target=submit, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [api.wait(job_id, "carol")["result_image_ids"] for job_id in ids]
    flattened = [image for images in results for image in images]
    assert len(flattened) == len(set(flattened)) == 4


def test_progress_events_carry_previews_when_asked(api: Api) -> None:
    import base64
    import io

    from PIL import Image

    headers = api.as_user("bob")
    job = api.client.post("/v1/jobs", json={**TXT2IMG, "steps": 150, "preview": True}, headers=headers).json()
    previews = []
    with api.client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=headers) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and "preview" in line:
                previews.append(json.loads(line[6:])["preview"])
    assert previews  # 150 steps: the stream attaches long before the job ends
    assert Image.open(io.BytesIO(base64.b64decode(previews[-1]))).size == (64, 64)  # decoded by the small VAE
    assert api.wait(job["id"], "bob")["request"]["preview"] is True


def test_a_job_post_crosses_to_the_thread_pool_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Header checks, the credential's signature and the services run on the event loop; the credential's
    lookup and the job's store share one thread hop and one session."""
    headers = api.as_user("bob")
    hops = _counted_hops(monkeypatch)
    response = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers)
    assert response.status_code == 202, response.text
    assert hops == ["_enqueue"]


def _counted_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions handed to the thread pool from now on (FastAPI's and the routes' own)."""
    import anyio.to_thread

    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(function: Any, *arguments: Any, **options: Any) -> Any:
        named = getattr(function, "func", function)  # run_in_threadpool hands over a partial
        hops.append(getattr(named, "__qualname__", repr(named)))
        return await run_sync(function, *arguments, **options)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return hops


def test_a_sync_job_reads_back_neither_its_row_nor_its_image_row(api: Api) -> None:
    """The sync answer subscribes to the job's events before the job is stored, so the final event is never
    missed and the row need not be read first; the image is the caller's own job's, so its bytes are read
    without looking its gallery row up. Each read was a session and a thread hop on the answer's path."""
    headers = {**api.as_user("bob"), "Accept": "image/png"}
    services = api.client.app.state.services  # type: ignore[attr-defined]
    with sql_statements(services.sessions) as seen:
        response = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers)
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\x89PNG")
    by_id = [statement for statement in seen if statement.lstrip().upper().startswith("SELECT")
             and ("WHERE jobs.id = " in statement or "WHERE images.id = " in statement)]  # fmt: skip
    assert by_id == []


def test_a_replayed_sync_job_answers_with_the_first_jobs_image(api: Api) -> None:
    """A sync request that repeats an Idempotency-Key gets the stored job's picture, not a new job's."""
    headers = {**api.as_user("bob"), "Accept": "image/png", "Idempotency-Key": "sync-replay"}
    first = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers)
    again = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["X-Limner-Job-Id"] == first.headers["X-Limner-Job-Id"]
    assert again.content == first.content


def test_a_sync_replay_whose_image_was_deleted_answers_404(api: Api) -> None:
    headers = {**api.as_user("bob"), "Accept": "image/png", "Idempotency-Key": "sync-deleted"}
    first = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers)
    image_id = first.headers["X-Limner-Image-Ids"].split(",")[0]
    assert api.client.delete(f"/v1/images/{image_id}", headers=api.as_user("bob")).status_code == 204
    again = api.client.post("/v1/jobs", json=TXT2IMG, headers=headers)
    assert again.status_code == 404, again.text
    assert image_id in again.json()["error"]["message"]


def test_a_sync_job_crosses_to_the_thread_pool_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Authentication and the store share one hop (each hop waits for a free thread and core), and the
    picture made by this process's worker a moment ago is answered from memory, identical to its stored
    file."""
    headers = {**api.as_user("bob"), "Accept": "image/png"}
    hops = _counted_hops(monkeypatch)
    response = api.client.post("/v1/jobs", json={**TXT2IMG, "seed": 11}, headers=headers)
    assert response.status_code == 200, response.text
    assert len(hops) == 1, hops
    image_id = response.headers["X-Limner-Image-Ids"].split(",")[0]
    stored = api.client.get(f"/v1/images/{image_id}", headers=api.as_user("bob"))
    assert stored.content == response.content
