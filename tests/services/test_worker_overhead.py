"""What the worker adds to a job: no database write in the job's own thread, no thread per job, few commits."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager

import pytest
from sqlalchemy.orm import Session, sessionmaker

from limner.core.progress import ProgressEvent
from limner.db.models import Job, JobStatus
from limner.services.jobs import worker as worker_module
from limner.services.jobs.events import EventBus
from limner.services.jobs.queue import JobQueue
from limner.services.jobs.worker import JobContext, Worker
from tests.services.db_events import engine_events
from tests.services.test_queue import enqueue, make_queue, make_user

STEPS = 25  # GenerationRequest's default, the job row's total_steps


def make_worker(sessions: sessionmaker[Session], handler: object) -> Worker:
    return Worker(make_queue(sessions), sessions, {"generate": handler}, EventBus())  # type: ignore[dict-item]


def row(sessions: sessionmaker[Session], job_id: str) -> Job:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def steps_then_wait_for_the_row(sessions: sessionmaker[Session], until_step: int) -> object:
    """A handler that reports every step at once, then waits until the row shows ``until_step``."""

    def handler(context: JobContext) -> list[str]:
        for step in range(1, until_step + 1):
            context.progress(ProgressEvent(step=step, total_steps=STEPS))
        deadline = time.monotonic() + 10
        while row(sessions, context.job.id).step < until_step and time.monotonic() < deadline:
            time.sleep(0.02)
        return []

    return handler


def commits(sessions: sessionmaker[Session]) -> AbstractContextManager[list[str]]:
    """Every commit on the database while the block runs, named by the thread that made it."""
    return engine_events(sessions, "commit", lambda _connection: threading.current_thread().name)


def test_the_thread_that_runs_a_job_writes_nothing_until_the_job_ends(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step progress reaches the row (once the job has run the progress interval), written by the heartbeat
    thread."""
    user = make_user(sessions)
    worker = make_worker(sessions, steps_then_wait_for_the_row(sessions, 1))
    job = enqueue(worker._queue, sessions, user)
    writers: list[str] = []
    heartbeat = JobQueue.heartbeat

    def recorded(queue: JobQueue, job_id: str, worker_id: str, **progress: int | None) -> bool:
        writers.append(threading.current_thread().name)
        return heartbeat(queue, job_id, worker_id, **progress)  # type: ignore[arg-type]

    monkeypatch.setattr(JobQueue, "heartbeat", recorded)
    runner = threading.Thread(target=worker.run_once, name="runs-the-job")
    runner.start()
    runner.join(15)
    worker.stop()
    assert row(sessions, job.id).status == JobStatus.SUCCEEDED.value
    assert writers, "the first step was never written"
    assert "runs-the-job" not in writers


def test_jobs_start_no_thread_of_their_own(sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    user = make_user(sessions)
    worker = make_worker(sessions, lambda context: [])
    jobs = [enqueue(worker._queue, sessions, user) for _ in range(4)]
    assert worker.run_once()  # the first job starts the worker's heartbeat thread
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    while worker.run_once():
        pass
    worker.stop()
    assert [row(sessions, job.id).status for job in jobs] == [JobStatus.SUCCEEDED.value] * 4
    assert started == []


@pytest.mark.parametrize("seconds", [0.05, 0.7], ids=["steps-at-once", "most-of-a-second"])
def test_a_job_shorter_than_the_rows_poll_writes_no_progress(sessions: sessionmaker[Session], seconds: float) -> None:
    """Enqueue, claim, the finish (the row, its last step and its counter together): three commits. The
    claim already says the job runs, and the row's readers poll it once a second: a progress write in
    between would be seen by nobody and only compete with the job for the cores. (0.05 s: time for a
    heartbeat thread that would write the first step at once; 0.7 s: a limner-tiny job on a busy machine.)"""
    user = make_user(sessions)

    def reports_every_step(context: JobContext) -> list[str]:
        for step in range(1, STEPS + 1):
            context.progress(ProgressEvent(step=step, total_steps=STEPS))
            time.sleep(seconds / STEPS)
        return []

    worker = make_worker(sessions, reports_every_step)
    with commits(sessions) as made:
        job = enqueue(worker._queue, sessions, user)
        assert worker.run_once()
        worker.stop()
    assert row(sessions, job.id).step == STEPS
    assert len(made) == 3, made


def test_a_longer_job_commits_four_times_whatever_its_step_count(sessions: sessionmaker[Session]) -> None:
    """Enqueue, claim, one progress write, the finish (the row and its counter together): no commit per step."""
    user = make_user(sessions)
    worker = make_worker(sessions, steps_then_wait_for_the_row(sessions, 1))
    with commits(sessions) as made:
        job = enqueue(worker._queue, sessions, user)
        assert worker.run_once()
        worker.stop()
    assert row(sessions, job.id).status == JobStatus.SUCCEEDED.value
    assert len(made) <= 4, made


def test_a_succeeded_job_shows_its_last_step(sessions: sessionmaker[Session]) -> None:
    """The finish writes the last step: the worker no longer writes a progress row at the last step."""
    user = make_user(sessions)

    def reports_every_step(context: JobContext) -> list[str]:
        for step in range(1, STEPS + 1):
            context.progress(ProgressEvent(step=step, total_steps=STEPS))
        return []

    worker = make_worker(sessions, reports_every_step)
    job = enqueue(worker._queue, sessions, user)
    assert worker.run_once()
    worker.stop()
    done = row(sessions, job.id)
    assert (done.status, done.step, done.total_steps, done.progress) == (JobStatus.SUCCEEDED.value, STEPS, STEPS, 1.0)


def test_every_job_gets_heartbeats_also_after_the_worker_was_idle(sessions: sessionmaker[Session]) -> None:
    """The heartbeat thread sleeps while no job runs; the next job, even one that reports no step, wakes it."""
    beaten: list[bool] = []

    def waits_for_a_heartbeat(context: JobContext) -> list[str]:
        claimed = row(sessions, context.job.id).heartbeat_at
        deadline = time.monotonic() + 10
        while row(sessions, context.job.id).heartbeat_at == claimed and time.monotonic() < deadline:
            time.sleep(0.02)
        beaten.append(row(sessions, context.job.id).heartbeat_at != claimed)
        return []

    user = make_user(sessions)
    worker = Worker(make_queue(sessions), sessions, {"generate": waits_for_a_heartbeat}, EventBus(),
                    heartbeat_interval=0.1)  # fmt: skip
    for _ in range(2):
        enqueue(worker._queue, sessions, user)
        assert worker.run_once()
        time.sleep(0.3)  # idle: the heartbeat thread has nothing to beat
    worker.stop()
    assert beaten == [True, True]


def test_a_waiting_worker_reads_the_queue_only_after_a_job_and_on_its_idle_poll(
    sessions: sessionmaker[Session],
) -> None:
    """A job this process stores while the worker waits reaches it without a read of the queue (handed over,
    or on a wake-up straight to the claim); the queue is read after a job, and on the idle poll."""
    user = make_user(sessions)
    done = threading.Event()

    def handler(context: JobContext) -> list[str]:
        done.set()
        return []

    worker = make_worker(sessions, handler)

    def statement_and_thread(_connection: object, _cursor: object, statement: str, *_rest: object) -> str:
        return f"{threading.current_thread().name}: {statement.lstrip()}"

    def looks(seen: list[str]) -> list[str]:  # the claiming thread's reads of the queue
        return [entry for entry in seen if entry.startswith(f"{worker.id}-0: SELECT jobs.id")]

    with engine_events(sessions, "before_cursor_execute", statement_and_thread) as seen:
        worker.start()
        time.sleep(0.2)  # the loop looked at the empty queue and waits
        looks_before = len(looks(seen))
        enqueue(worker._queue, sessions, user)
        assert done.wait(10)
        time.sleep(0.2)  # the look after the job
        worker.stop()
    assert looks_before >= 1
    assert len(looks(seen)) == looks_before + 1, seen  # the look after the job, none before its claim


PAUSE = 0.4  # a long ANSWER_PAUSE_SECONDS, so that "not before" is plain to see on a busy machine


def published_ends(worker: Worker) -> list[float]:
    """When each job's end was published (monotonic seconds), recorded on the worker's bus."""
    ends: list[float] = []
    publish = worker._events.publish

    def recorded(job_id: str, event: dict[str, object]) -> None:
        if event["status"] == JobStatus.SUCCEEDED.value:
            ends.append(time.monotonic())
        publish(job_id, event)

    worker._events.publish = recorded  # type: ignore[method-assign]
    return ends


def test_after_work_waits_for_the_answers_pause(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job's thumbnail is not encoded while its sync answer is being sent."""
    monkeypatch.setattr(worker_module, "ANSWER_PAUSE_SECONDS", PAUSE)
    ran: list[float] = []

    def handler(context: JobContext) -> list[str]:
        context.after(lambda: ran.append(time.monotonic()))
        return []

    worker = make_worker(sessions, handler)
    ends = published_ends(worker)
    enqueue(worker._queue, sessions, make_user(sessions))
    assert worker.run_once()
    worker.stop()  # waits for the after-work
    [end], [after] = ends, ran
    assert after - end >= PAUSE


def claiming_thread_statements(sessions: sessionmaker[Session], worker: Worker) -> AbstractContextManager[list[str]]:
    """(monotonic time, statement) of every statement of the worker's claiming thread, as text."""

    def entry(_connection: object, _cursor: object, statement: str, *_rest: object) -> str:
        if threading.current_thread().name != f"{worker.id}-0":
            return ""
        return f"{time.monotonic()} {statement.lstrip()}"

    return engine_events(sessions, "before_cursor_execute", entry)


def test_after_a_job_that_came_to_an_empty_queue_the_next_look_waits_for_the_answer(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "ANSWER_PAUSE_SECONDS", PAUSE)
    user = make_user(sessions)
    worker = make_worker(sessions, lambda context: [])
    ends = published_ends(worker)
    with claiming_thread_statements(sessions, worker) as seen:
        worker.start()
        time.sleep(0.2)  # the loop looked at the empty queue and waits
        enqueue(worker._queue, sessions, user)
        time.sleep(PAUSE + 0.4)
        worker.stop()
    [end] = ends
    first_after = min(float(entry.split()[0]) for entry in seen if entry and float(entry.split()[0]) > end)
    assert first_after - end >= PAUSE


def test_a_job_queued_here_during_the_pause_is_claimed_at_once(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "ANSWER_PAUSE_SECONDS", 5.0)
    user = make_user(sessions)
    finished: list[float] = []

    def handler(context: JobContext) -> list[str]:
        finished.append(time.monotonic())
        return []

    worker = make_worker(sessions, handler)
    worker.start()
    time.sleep(0.2)
    enqueue(worker._queue, sessions, user)
    deadline = time.monotonic() + 10
    while not finished and time.monotonic() < deadline:
        time.sleep(0.01)
    queued_at = time.monotonic()
    second = enqueue(worker._queue, sessions, user)
    while len(finished) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert row(sessions, second.id).status == JobStatus.SUCCEEDED.value
    assert finished[1] - queued_at < 2.0


def test_a_backlog_runs_without_pauses(sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs that were queued before the worker came to them do not wait for an answer's pause."""
    monkeypatch.setattr(worker_module, "ANSWER_PAUSE_SECONDS", 5.0)
    user = make_user(sessions)
    worker = make_worker(sessions, lambda context: [])
    jobs = [enqueue(worker._queue, sessions, user) for _ in range(4)]
    started = time.monotonic()
    worker.start()
    deadline = started + 10
    while time.monotonic() < deadline and any(
        row(sessions, job.id).status != JobStatus.SUCCEEDED.value for job in jobs
    ):
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    worker.stop()
    assert elapsed < 4.0, elapsed
