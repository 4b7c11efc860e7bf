"""Waiting for a sync job: the row is read once, the final event says the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from limner.api import waiting
from limner.core.errors import LimnerError
from limner.db.base import make_engine, make_session_factory
from limner.db.migrate import upgrade_to_head
from limner.services.jobs.events import EventBus
from limner.services.jobs.worker import job_event
from tests.services.test_queue import enqueue, make_queue, make_user


def wait_through_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: bool) -> tuple[Any, int]:
    """Run a job's life through the bus (running, steps, the end) while ``wait_for`` waits; count row reads."""
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade_to_head(engine)
    sessions = make_session_factory(engine)
    queue = make_queue(sessions)
    job = enqueue(queue, sessions, make_user(sessions))
    services = SimpleNamespace(events=EventBus(), sessions=sessions)
    reads = 0
    load = waiting._load

    def counted(services: Any, job_id: str) -> Any:
        nonlocal reads
        reads += 1
        return load(services, job_id)

    monkeypatch.setattr(waiting, "_load", counted)

    async def scenario() -> Any:
        waiter = asyncio.create_task(waiting.wait_for(services, job.id, 30))  # type: ignore[arg-type]
        while not reads:
            await asyncio.sleep(0.01)
        running = queue.claim("w")
        assert running is not None
        services.events.publish(job.id, job_event(running))
        for step in (1, 2, 3):
            services.events.publish(job.id, {"job_id": job.id, "status": "running", "step": step, "total_steps": 3})
        if error:
            finished = queue.finish(job.id, "w", waiting.JobStatus.FAILED, error_code="invalid_request",
                                    error_message="bad")  # fmt: skip
        else:
            finished = queue.finish(job.id, "w", waiting.JobStatus.SUCCEEDED, result_image_ids=["a", "b"])
        assert finished is not None
        services.events.publish(job.id, job_event(finished))
        return await waiter

    try:
        return asyncio.run(scenario()), reads
    finally:
        engine.dispose()


def test_a_sync_wait_reads_the_row_once_and_takes_the_images_from_the_final_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished, reads = wait_through_events(tmp_path, monkeypatch, error=False)
    assert (finished.status, finished.result_image_ids) == ("succeeded", ["a", "b"])
    assert reads == 1


def test_a_failed_job_raises_its_error_from_the_final_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LimnerError) as raised:
        wait_through_events(tmp_path, monkeypatch, error=True)
    assert (raised.value.code, str(raised.value)) == ("invalid_request", "bad")
