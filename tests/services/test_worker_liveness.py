"""Heartbeats for the whole job, from the database's clock: blocked workers live, dead ones lose their job fast."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from limner.core.errors import GenerationCanceledError
from limner.db.models import Job, JobStatus
from limner.services.jobs import queue as queue_module
from limner.services.jobs.events import EventBus
from limner.services.jobs.worker import JobContext, Worker
from tests.services.test_queue import enqueue, make_queue, make_user

TIMEOUT = timedelta(seconds=1)


def make_worker(sessions: sessionmaker[Session], handler: object) -> Worker:
    queue = make_queue(sessions, heartbeat_timeout=TIMEOUT)
    return Worker(queue, sessions, {"generate": handler}, EventBus(), heartbeat_interval=0.2, recover_interval=0.2)  # type: ignore[dict-item]


def wait_finished(sessions: sessionmaker[Session], job_id: str, timeout: float) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            job = session.get(Job, job_id)
            assert job is not None
            if JobStatus(job.status).finished:
                return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def test_a_worker_blocked_without_progress_is_not_declared_dead(sessions: sessionmaker[Session]) -> None:
    """A handler stuck 3 heartbeat timeouts in "model loading" keeps its job; another worker sweeps meanwhile."""
    runs: list[str] = []

    def loading_for_a_long_time(context: JobContext) -> list[str]:
        runs.append(context.job.id)
        time.sleep(3 * TIMEOUT.total_seconds())  # no progress callback at all
        return []

    user = make_user(sessions)
    busy = make_worker(sessions, loading_for_a_long_time)
    other = make_worker(sessions, loading_for_a_long_time)
    job = enqueue(busy._queue, sessions, user)
    runner = threading.Thread(target=busy.run_once)
    runner.start()
    while not runs:
        time.sleep(0.01)
    other.start()  # sweeps every 0.2 s, and would claim the job if it came back to the queue
    try:
        runner.join(10)
    finally:
        other.stop()
    done = wait_finished(sessions, job.id, 5)
    assert (done.status, done.attempts, runs) == (JobStatus.SUCCEEDED.value, 1, [job.id])


def test_a_dead_workers_job_runs_elsewhere_within_timeout_plus_sweep(sessions: sessionmaker[Session]) -> None:
    user = make_user(sessions)
    survivor = make_worker(sessions, lambda context: [])
    job = enqueue(survivor._queue, sessions, user)
    assert survivor._queue.claim("killed-worker") is not None  # claimed, then nothing: kill -9
    started = time.monotonic()
    survivor.start()
    try:
        done = wait_finished(sessions, job.id, 10)
    finally:
        survivor.stop()
    elapsed = time.monotonic() - started
    assert done.status == JobStatus.SUCCEEDED.value
    assert done.attempts == 2
    assert elapsed < TIMEOUT.total_seconds() + 0.2 + 1.5, elapsed


def test_cancel_reaches_a_job_blocked_without_progress(sessions: sessionmaker[Session]) -> None:
    """The heartbeat thread reads the cancel flag another process set on the row."""
    released = threading.Event()

    def waits_for_cancel(context: JobContext) -> list[str]:
        deadline = time.monotonic() + 5
        while not context.cancel.canceled and time.monotonic() < deadline:
            time.sleep(0.05)  # a long call that checks the token now and then, but reports no step
        released.set()
        raise GenerationCanceledError("canceled")

    user = make_user(sessions)
    worker = make_worker(sessions, waits_for_cancel)
    job = enqueue(worker._queue, sessions, user)
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    time.sleep(0.3)
    with sessions() as session:
        worker._queue.request_cancel(session, user, job.id)
    runner.join(10)
    assert released.is_set()
    assert wait_finished(sessions, job.id, 5).status == JobStatus.CANCELED.value


def test_heartbeats_use_the_database_clock(sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a worker's own clock does not matter: heartbeats are the server's ``now()``."""
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("a SQLite file has one machine's clock; nothing to compare with")
    user = make_user(sessions)
    queue = make_queue(sessions)
    job = enqueue(queue, sessions, user)
    monkeypatch.setattr(queue_module, "utcnow", lambda: datetime(2001, 1, 1, tzinfo=UTC))  # a skewed worker
    assert queue.claim("skewed") is not None
    assert queue.heartbeat(job.id, "skewed") is False
    with sessions() as session:
        beat, server_now = session.execute(sa.select(Job.heartbeat_at, sa.func.now()).where(Job.id == job.id)).one()
    assert abs((server_now - beat).total_seconds()) < 5
    assert queue.recover() == (0, 0)
