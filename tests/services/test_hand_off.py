"""Jobs stored already claimed by an idle worker thread of this process, and handed over in memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from limner.db.models import Job, JobStatus
from limner.services.jobs.events import EventBus
from limner.services.jobs.hand_off import HandOff
from limner.services.jobs.worker import JobContext, Worker
from tests.services.db_events import engine_events, sql_statements
from tests.services.test_queue import enqueue, make_queue, make_user

KINDS = frozenset({"generate"})


@pytest.fixture
def waiters() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def until_idle(hand_off: HandOff, threads: int) -> None:
    """Return once ``threads`` threads wait for work (probed with promises, each withdrawn)."""
    deadline = time.monotonic() + 5
    while True:
        granted = sum(hand_off.promise("generate") is not None for _ in range(threads))
        for _ in range(granted):
            hand_off.withdraw()
        if granted == threads:
            return
        assert time.monotonic() < deadline, f"{threads} thread(s) never all waited"
        time.sleep(0.005)


def idle_thread(hand_off: HandOff, pool: ThreadPoolExecutor, timeout: float) -> Future[Job | bool]:
    """A thread waiting for work, as a worker's idle claimer does; returns once it waits."""
    waiting = pool.submit(hand_off.wait, timeout)
    until_idle(hand_off, 1)
    return waiting


def opened_with_an_idle_thread(pool: ThreadPoolExecutor, timeout: float) -> tuple[HandOff, Future[Job | bool]]:
    """A hand-off open for worker "w", and its one thread waiting for work (for at most ``timeout``)."""
    hand_off = HandOff()
    hand_off.open("w", KINDS)
    return hand_off, idle_thread(hand_off, pool, timeout)


def test_a_promise_needs_an_open_hand_off_a_handled_kind_and_a_free_idle_thread(
    waiters: ThreadPoolExecutor,
) -> None:
    hand_off = HandOff()
    assert hand_off.promise("generate") is None  # no worker
    hand_off.open("w", KINDS)
    assert hand_off.promise("generate") is None  # no thread waits
    idle_thread(hand_off, waiters, 5)
    assert hand_off.promise("train") is None  # not a kind this worker runs
    assert hand_off.promise("generate") == "w"
    assert hand_off.promise("generate") is None  # its one idle thread is set aside already
    hand_off.withdraw()
    hand_off.close()


def test_the_thread_set_aside_waits_past_its_timeout_for_its_job(waiters: ThreadPoolExecutor) -> None:
    hand_off, waiting = opened_with_an_idle_thread(waiters, 0.05)
    assert hand_off.promise("generate") == "w"
    time.sleep(0.3)  # well past the thread's timeout: it stays, or the promised job would have no thread
    assert not waiting.done()
    job = Job(id="j", worker_id="w")
    assert hand_off.deliver(job)
    assert waiting.result(5) is job


def test_a_withdrawn_promise_frees_its_thread(waiters: ThreadPoolExecutor) -> None:
    hand_off, waiting = opened_with_an_idle_thread(waiters, 0.05)
    assert hand_off.promise("generate") == "w"
    time.sleep(0.1)
    hand_off.withdraw()
    assert waiting.result(5) is False  # timed out: it looks at the queue


def test_a_job_queued_here_wakes_a_thread_to_claim_it(waiters: ThreadPoolExecutor) -> None:
    hand_off, waiting = opened_with_an_idle_thread(waiters, 30)
    hand_off.queued()
    assert waiting.result(5) is True


def test_closing_wakes_the_threads_and_returns_what_they_did_not_take(waiters: ThreadPoolExecutor) -> None:
    hand_off, waiting = opened_with_an_idle_thread(waiters, 30)
    assert hand_off.promise("generate") == "w"
    assert hand_off.close() == []
    assert waiting.result(5) is False
    assert hand_off.deliver(Job(id="late", worker_id="w")) is False  # the caller gives it back to the queue
    hand_off.open("w2", KINDS)
    with pytest.raises(RuntimeError, match="handed to worker w2"):
        hand_off.open("w3", KINDS)


def started_worker(sessions: sessionmaker[Session], handler: object, threads: int = 1) -> Worker:
    """A started worker whose ``threads`` all wait for work."""
    worker = Worker(make_queue(sessions), sessions, {"generate": handler}, EventBus(), threads=threads)  # type: ignore[dict-item]
    worker.start()
    until_idle(worker._queue.hand_off, threads)
    return worker


def _committing_thread(_connection: object) -> str:
    return threading.current_thread().name


def _the_jobs(committers: list[str], worker: Worker) -> list[str]:
    """The commits of the job itself: not the sweeper's look for lost jobs, which commits on its own clock
    (its first pass may come after the worker's threads are idle, inside the block that counts)."""
    return [name for name in committers if name != f"{worker.id}-sweeper"]


def test_a_job_stored_while_a_worker_thread_waits_runs_without_a_claim(sessions: sessionmaker[Session]) -> None:
    """Stored as running by that worker (a heartbeat, one attempt) and handed over: two commits in all, the
    insert and the finish, and no claiming UPDATE."""
    user = make_user(sessions)
    seen_by_handler: list[tuple[str, str | None, int]] = []
    done = threading.Event()

    def handler(context: JobContext) -> list[str]:
        with sessions() as session:
            row = session.get(Job, context.job.id)
            assert row is not None
            assert None not in (row.started_at, row.heartbeat_at)
            seen_by_handler.append((row.status, row.worker_id, row.attempts))
        done.set()
        return []

    worker = started_worker(sessions, handler)
    with engine_events(sessions, "commit", _committing_thread) as committers, sql_statements(sessions) as sql:
        job = enqueue(worker._queue, sessions, user)
        assert done.wait(10)
        deadline = time.monotonic() + 10
        while len(_the_jobs(committers, worker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the worker's look at the queue after the answer's pause
    worker.stop()
    assert (job.status, job.worker_id) == (JobStatus.RUNNING.value, worker.id)
    assert seen_by_handler == [(JobStatus.RUNNING.value, worker.id, 1)]
    assert len(_the_jobs(committers, worker)) == 2, committers
    claims = [
        statement for statement in sql if statement.lstrip().startswith("UPDATE jobs") and "started_at=" in statement
    ]
    assert claims == [], sql
    with sessions() as session:
        assert session.get(Job, job.id).status == JobStatus.SUCCEEDED.value  # type: ignore[union-attr]


def test_a_job_behind_a_queued_one_is_queued_not_handed_over(
    sessions: sessionmaker[Session], waiters: ThreadPoolExecutor
) -> None:
    """No job overtakes an older one: with a job waiting, the new one joins the queue."""
    user = make_user(sessions)
    queue = make_queue(sessions)
    older = enqueue(queue, sessions, user)
    queue.hand_off.open("w", KINDS)
    assert queue.hand_off.wait(0) is True  # told of the older job, as a claimer would be
    idle_thread(queue.hand_off, waiters, 30)
    newer = enqueue(queue, sessions, user)
    assert (older.status, newer.status) == (JobStatus.QUEUED.value, JobStatus.QUEUED.value)
    queue.hand_off.close()


def test_a_job_whose_worker_stopped_before_the_hand_over_goes_back_to_the_queue(
    sessions: sessionmaker[Session], waiters: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user(sessions)
    queue = make_queue(sessions)
    queue.hand_off.open("w", KINDS)
    idle_thread(queue.hand_off, waiters, 30)
    deliver = queue.hand_off.deliver

    def worker_stops_first(job: Job) -> bool:
        queue.hand_off.close()
        return deliver(job)

    monkeypatch.setattr(queue.hand_off, "deliver", worker_stops_first)
    job = enqueue(queue, sessions, user)
    assert (job.status, job.worker_id, job.attempts) == (JobStatus.QUEUED.value, None, 0)
    assert queue.claim("another") is not None


def stored_as_handed_over(sessions: sessionmaker[Session], queue: object, worker_id: str) -> Job:
    """A job stored as claimed by ``worker_id`` whose thread never takes it (the process is gone)."""
    hand_off: HandOff = queue.hand_off  # type: ignore[attr-defined]
    hand_off.promise = lambda kind: worker_id  # type: ignore[method-assign]
    hand_off.deliver = lambda job: True  # type: ignore[method-assign]
    return enqueue(queue, sessions, make_user(sessions))  # type: ignore[arg-type]


def test_a_handed_over_job_of_a_dead_process_is_recovered_like_any_running_job(
    sessions: sessionmaker[Session],
) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    queue = make_queue(sessions, clock=lambda: now[0])
    job = stored_as_handed_over(sessions, queue, "gone")
    assert job.status == JobStatus.RUNNING.value
    assert queue.recover() == (0, 0)  # its heartbeat is fresh
    now[0] += timedelta(minutes=5)
    assert queue.recover() == (1, 0)
    assert queue.claim("another") is not None


def test_a_stopping_worker_gives_back_the_jobs_handed_to_it_but_not_taken(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = started_worker(sessions, lambda context: [])
    job = stored_as_handed_over(sessions, worker._queue, worker.id)
    close = worker._queue.hand_off.close
    monkeypatch.setattr(worker._queue.hand_off, "close", lambda: [*close(), job])
    worker.stop()
    with sessions() as session:
        row = session.get(Job, job.id)
        assert row is not None
        assert (row.status, row.worker_id, row.attempts) == (JobStatus.QUEUED.value, None, 0)


def test_jobs_stored_together_reach_the_waiting_threads_together(sessions: sessionmaker[Session]) -> None:
    """Four jobs stored at once while four threads wait run at the same time, one per thread (what lets the
    batching engine put them in one pipeline call)."""
    user = make_user(sessions)
    together = threading.Barrier(4, timeout=10)
    threads: list[str] = []

    def handler(context: JobContext) -> list[str]:
        threads.append(threading.current_thread().name)
        together.wait()  # breaks (the job fails) unless all four run at once
        return []

    worker = started_worker(sessions, handler, threads=4)
    with ThreadPoolExecutor(max_workers=4) as callers:
        jobs = list(callers.map(lambda _: enqueue(worker._queue, sessions, user), range(4)))
    deadline = time.monotonic() + 15
    while any(row_status(sessions, job.id) == JobStatus.RUNNING.value for job in jobs):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    worker.stop()
    assert [job.status for job in jobs] == [JobStatus.RUNNING.value] * 4  # all four handed over
    assert [row_status(sessions, job.id) for job in jobs] == [JobStatus.SUCCEEDED.value] * 4
    assert len(set(threads)) == 4


def row_status(sessions: sessionmaker[Session], job_id: str) -> str:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.status
