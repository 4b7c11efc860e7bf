"""A real server process killed mid-job and restarted: no job is lost or stuck in "running"."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.api.live_server import LiveServer


def wait_status(server: LiveServer, token: str, job_id: str, wanted: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
        if job["status"] in wanted:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {wanted}")


def test_killed_server_keeps_queued_jobs_and_retries_the_running_one(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    server = LiveServer(tmp_path / "data", tiny_models["txt2img"])
    server.start()
    try:
        token = server.token()
        headers = {"Authorization": f"Bearer {token}"}
        long_job = {"prompt": "slow", "steps": 1000, "width": 64, "height": 64, "seed": 1}
        running = httpx.post(f"{server.url}/v1/jobs", json=long_job, headers=headers).json()
        queued = httpx.post(f"{server.url}/v1/jobs", json={"prompt": "after", "steps": 2, "width": 64, "height": 64},
                            headers=headers).json()  # fmt: skip
        wait_status(server, token, running["id"], {"running"})
        server.kill()

        server.start()
        token = server.token()
        # The interrupted job was re-queued (attempt 2); cancel it so the queued one can run.
        requeued = wait_status(server, token, running["id"], {"queued", "running"})
        assert requeued["status"] in {"queued", "running"}
        httpx.post(f"{server.url}/v1/jobs/{running['id']}/cancel", headers={"Authorization": f"Bearer {token}"})
        done = wait_status(server, token, queued["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded"
        final = wait_status(server, token, running["id"], {"canceled", "failed"})
        assert final["attempts"] == 2
    finally:
        server.stop()
