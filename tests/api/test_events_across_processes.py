"""A job's progress and previews reach an SSE client of another API process (issue 15).

A real ``limner serve`` process only serves the API (no worker); a worker in this test's process
runs the job. They share a database, a file store and Redis, nothing else. The client submits to,
and listens on, the API process.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from limner.services.container import build_services
from tests.api.conftest import service_settings
from tests.api.live_server import LiveServer
from tests.services.conftest import require

REDIS_URL = os.environ.get("LIMNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def api_and_worker(tmp_path: Path, tiny_models: dict[str, Path]) -> Iterator[LiveServer]:
    redis = pytest.importorskip("redis")
    try:
        reachable = bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        reachable = False
    require("Redis", reachable, REDIS_URL)
    secret = secrets.token_urlsafe(48)
    shared = {"database_url": f"sqlite:///{tmp_path / 'shared.db'}", "files_url": str(tmp_path / "files"),
              "events_url": REDIS_URL, "external_workers": True}  # fmt: skip
    api_only = LiveServer(tmp_path / "api", tiny_models["txt2img"], LIMNER_WORKERS="0", LIMNER_JWT_SECRET=secret,
                          **{f"LIMNER_{key.upper()}": str(value) for key, value in shared.items()})  # fmt: skip
    api_only.start()  # it migrates the shared database before the worker opens it
    worker = build_services(service_settings(tmp_path / "worker", tiny_models["txt2img"], jwt_secret=secret, **shared))
    worker.start_worker()
    try:
        yield api_only
    finally:
        worker.stop()
        api_only.stop()


def test_progress_and_previews_of_a_job_run_elsewhere_reach_the_listener(api_and_worker: LiveServer) -> None:
    api_only = api_and_worker
    headers = {"Authorization": f"Bearer {api_only.token()}"}
    body = {"prompt": "a red apple", "steps": 12, "width": 64, "height": 64, "seed": 3, "preview": True}
    with httpx.Client(base_url=api_only.url, headers=headers, timeout=60) as client:
        job = client.post("/v1/jobs", json=body)
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        events = []
        with connect_sse(client, "GET", f"/v1/jobs/{job_id}/events") as source:
            for sse in source.iter_sse():
                if not sse.data:
                    continue
                events.append(json.loads(sse.data))
                if events[-1].get("status") in ("succeeded", "failed", "canceled"):
                    break
    assert events[-1]["status"] == "succeeded", events[-1]
    steps = [event["step"] for event in events if event.get("status") == "running" and event.get("step")]
    assert len(set(steps)) >= 2, steps  # live steps, not only the final state
    assert any(event.get("preview") for event in events)
