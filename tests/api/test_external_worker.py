"""Scale-out: `limner serve` with no worker of its own, `limner worker` in another process.

The API and the worker share only the database and the file store, as on separate machines.
A job runs in the worker process, its progress reaches SSE clients of the API through the job
row, and a worker stopped with SIGTERM hands its running job back to the queue.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.live_server import LiveServer
from tests.api.test_durability import wait_status

EXTERNAL = {"LIMNER_WORKERS": "0", "LIMNER_EXTERNAL_WORKERS": "true"}


def start_worker(server: LiveServer) -> subprocess.Popen[bytes]:
    log = (server.log.parent / "worker.log").open("ab")
    env = {**server.env, "LIMNER_WORKERS": "1"}
    return subprocess.Popen([sys.executable, "-m", "limner", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)


def sse_events(server: LiveServer, token: str, job_id: str, until: int) -> list[dict]:
    """Read the job's SSE stream until ``until`` events with a step above 0 arrived (or it ended)."""
    seen: list[dict] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{server.url}/v1/jobs/{job_id}/events", headers=headers, timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if sum(1 for event in seen if (event.get("step") or 0) > 0) >= until:
                    break
    return seen


def test_jobs_run_in_a_separate_worker_process(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    server = LiveServer(tmp_path / "data", tiny_models["txt2img"], **EXTERNAL)
    server.start()
    worker = start_worker(server)
    try:
        token = server.token()
        headers = {"Authorization": f"Bearer {token}"}
        ready = httpx.get(f"{server.url}/readyz").json()
        assert "worker" not in ready["checks"]  # the API runs none itself

        long_job = {"prompt": "slow", "steps": 1000, "width": 64, "height": 64, "seed": 1}
        running = httpx.post(f"{server.url}/v1/jobs", json=long_job, headers=headers).json()
        assert "id" in running, running
        wait_status(server, token, running["id"], {"running"})
        events = sse_events(server, token, running["id"], until=2)
        steps = [event["step"] for event in events if event.get("step")]
        assert len(steps) >= 2
        assert steps == sorted(steps)  # progress from the worker process, read back from the job row

        worker.terminate()  # SIGTERM: a deploy, not a crash
        assert worker.wait(60) == 0
        handed_back = wait_status(server, token, running["id"], {"queued"})
        assert handed_back["attempts"] == 0
        httpx.post(f"{server.url}/v1/jobs/{running['id']}/cancel", headers=headers).raise_for_status()

        worker = start_worker(server)
        quick = httpx.post(f"{server.url}/v1/jobs", json={"prompt": "a dot", "steps": 2, "width": 64, "height": 64},
                           headers=headers).json()  # fmt: skip
        done = wait_status(server, token, quick["id"], {"succeeded", "failed"}, timeout=120)
        assert done["status"] == "succeeded", done
        image = httpx.get(f"{server.url}/v1/images/{done['result_image_ids'][0]}", headers=headers)
        assert image.headers["content-type"] == "image/png"  # written by the worker, served by the API
        canceled = httpx.get(f"{server.url}/v1/jobs/{running['id']}", headers=headers).json()
        assert canceled["status"] == "canceled"
    finally:
        worker.terminate()
        worker.wait(60)
        server.stop()
