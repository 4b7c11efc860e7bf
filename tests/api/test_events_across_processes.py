"""A job's progress and previews reach an SSE client of another API process (issue 15).

Two real ``limner serve`` processes share a database, a file store and Redis: one only serves the
API (no worker), the other runs the job. The client submits to, and listens on, the first.
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

from tests.api.live_server import LiveServer
from tests.services.conftest import require

REDIS_URL = os.environ.get("LIMNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def two_servers(tmp_path: Path, tiny_models: dict[str, Path]) -> Iterator[tuple[LiveServer, LiveServer]]:
    redis = pytest.importorskip("redis")
    try:
        reachable = bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        reachable = False
    require("Redis", reachable, REDIS_URL)
    shared = {
        "LIMNER_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "LIMNER_FILES_URL": str(tmp_path / "files"),
        "LIMNER_EVENTS_URL": REDIS_URL,
        "LIMNER_JWT_SECRET": secrets.token_urlsafe(48),
        "LIMNER_EXTERNAL_WORKERS": "true",
    }
    api_only = LiveServer(tmp_path / "api", tiny_models["txt2img"], LIMNER_WORKERS="0", **shared)
    running = LiveServer(tmp_path / "worker", tiny_models["txt2img"], LIMNER_WORKERS="1", **shared)
    try:
        api_only.start()  # one after the other: the first start migrates the shared database
        running.start()
        yield api_only, running
    finally:
        api_only.stop()
        running.stop()


def test_progress_and_previews_of_a_job_run_elsewhere_reach_the_listener(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    api_only, _ = two_servers
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
    assert len(set(steps)) >= 3, steps  # live steps, not only the final state
    assert any(event.get("preview") for event in events)
