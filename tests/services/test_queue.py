"""The durable queue: atomic claims, restarts, dead workers, bounds; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from limner.core.errors import QueueFullError
from limner.core.jobs import GenerateJob
from limner.core.requests import GenerationRequest
from limner.db.models import Job, JobStatus, Role, User
from limner.services.auth.passwords import Passwords
from limner.services.jobs.queue import JobQueue, NewJob
from limner.services.users import Users
from tests.services.db_events import sql_statements


def make_queue(sessions: sessionmaker[Session], **overrides: object) -> JobQueue:
    options: dict[str, object] = {"max_queued": 10, "max_attempts": 2, "heartbeat_timeout": timedelta(seconds=60)}
    options.update(overrides)
    return JobQueue(sessions, **options)  # type: ignore[arg-type]


def make_user(sessions: sessionmaker[Session], name: str = "owner") -> User:
    with sessions() as session:
        return Users(Passwords()).create(session, name, "a long password", Role.USER)


def enqueue(queue: JobQueue, sessions: sessionmaker[Session], user: User, **job: object) -> Job:
    with sessions() as session:
        new = NewJob(GenerateJob(request=GenerationRequest(prompt="x")), **job)  # type: ignore[arg-type]
        created, _ = queue.enqueue(session, user, new)
        return created


def test_jobs_survive_a_restart(sessions: sessionmaker[Session]) -> None:
    user = make_user(sessions)
    queue = make_queue(sessions)
    ids = [enqueue(queue, sessions, user).id for _ in range(3)]
    restarted = make_queue(sessions)  # a new process: nothing in memory
    claimed = [restarted.claim("w") for _ in range(4)]
    assert [job.id for job in claimed if job] == ids
    assert claimed[-1] is None


def test_two_workers_never_claim_the_same_job(sessions: sessionmaker[Session]) -> None:
    user = make_user(sessions)
    queue = make_queue(sessions, max_queued=100)
    ids = {enqueue(queue, sessions, user).id for _ in range(20)}
    claims: dict[str, list[str]] = {"a": [], "b": [], "c": []}

    def work(worker: str) -> None:
        while (job := queue.claim(worker)) is not None:
            claims[worker].append(job.id)

    threads = [threading.Thread(target=work, args=(name,)) for name in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [job_id for taken in claims.values() for job_id in taken]
    assert sorted(everything) == sorted(ids)


def test_running_job_of_a_dead_process_is_requeued_then_failed(sessions: sessionmaker[Session]) -> None:
    user = make_user(sessions)
    queue = make_queue(sessions)
    job = enqueue(queue, sessions, user)
    assert queue.claim("dead-worker") is not None
    assert make_queue(sessions).recover(all_running=True) == (1, 0)  # server restart
    with sessions() as session:
        assert session.get(Job, job.id).status == JobStatus.QUEUED.value  # type: ignore[union-attr]
    assert queue.claim("dead-again") is not None
    assert make_queue(sessions).recover(all_running=True) == (0, 1)
    with sessions() as session:
        final = session.get(Job, job.id)
        assert final is not None
        assert final.status == JobStatus.FAILED.value
        assert final.error_code == "worker_lost"
        assert "worker stopped" in (final.error_message or "")


def test_stale_heartbeat_is_detected_without_restart(sessions: sessionmaker[Session]) -> None:
    user = make_user(sessions)
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    queue = make_queue(sessions, clock=lambda: now[0])
    enqueue(queue, sessions, user)
    claimed = queue.claim("w1")
    assert claimed is not None
    assert queue.recover() == (0, 0)  # heartbeat is fresh
    now[0] += timedelta(minutes=5)
    assert queue.recover() == (1, 0)
    assert queue.heartbeat(claimed.id, "w1", step=1, total_steps=2) is True  # w1 lost it: stop


def test_finish_only_by_the_owning_worker(sessions: sessionmaker[Session]) -> None:
    queue, _user, job = claimed_job(sessions)
    assert queue.finish(job.id, "w2", JobStatus.SUCCEEDED) is None
    done = queue.finish(job.id, "w1", JobStatus.SUCCEEDED, result_image_ids=["a"])
    assert done is not None
    assert done.result_image_ids == ["a"]


def claimed_job(sessions: sessionmaker[Session]) -> tuple[JobQueue, User, Job]:
    """A queue, its user and a job of theirs claimed by worker ``w1``."""
    user = make_user(sessions)
    queue = make_queue(sessions)
    enqueue(queue, sessions, user)
    job = queue.claim("w1")
    assert job is not None
    return queue, user, job


@contextmanager
def session_flushes() -> Iterator[list[object]]:
    """Every ORM flush, of any session, while the block runs."""
    flushes: list[object] = []

    def flushed(*arguments: object) -> None:
        flushes.append(arguments)

    sa.event.listen(Session, "before_flush", flushed)
    try:
        yield flushes
    finally:
        sa.event.remove(Session, "before_flush", flushed)


def test_a_success_stores_its_images_and_count_without_a_session_flush(sessions: sessionmaker[Session]) -> None:
    """A job's end is statements on one connection: no ORM flush (its unit of work was about 0.45 ms of
    every job's answer); the images are stored with their defaults, and the returned row is detached."""
    from limner.db.models import Image, JobCounter

    queue, user, job = claimed_job(sessions)
    images = [Image(id=f"img{index}", owner_id=user.id, job_id=job.id, index_in_job=index, file_key=f"f{index}",
                    width=8, height=8, prompt="x") for index in range(2)]  # fmt: skip
    with session_flushes() as flushes:
        done = queue.finish(job.id, "w1", JobStatus.SUCCEEDED, result_image_ids=["img0", "img1"], rows=images)
    assert flushes == []
    assert done is not None
    assert (done.status, done.step, done.result_image_ids) == (JobStatus.SUCCEEDED.value, 25, ["img0", "img1"])
    assert sa.inspect(done).detached or sa.inspect(done).transient
    with sessions() as session:
        stored = session.scalars(sa.select(Image).order_by(Image.index_in_job)).all()
        counter = session.get(JobCounter, JobStatus.SUCCEEDED.value)
    assert [(image.id, image.kind, image.parameters) for image in stored] == [
        ("img0", "output", {}),
        ("img1", "output", {}),
    ]
    assert all(image.created_at is not None for image in stored)
    assert counter is not None
    assert counter.finished == 1


def test_a_job_is_stored_without_a_session_flush_and_returned_with_its_defaults(
    sessions: sessionmaker[Session],
) -> None:
    """The insert is a statement returning the whole row (the unit of work cost 0.2 ms more a job), queued
    or handed to a waiting worker thread, and the job comes back as the row is: defaults filled in."""
    user = make_user(sessions)
    queue = make_queue(sessions)
    with session_flushes() as flushes:
        queued = enqueue(queue, sessions, user)
        with sessions() as session:
            claimed, created = queue._insert(session, user, NewJob(GenerateJob(request=GenerationRequest(prompt="y"))),
                                             "w1")  # fmt: skip
    assert flushes == []
    assert created
    assert (queued.status, queued.progress, queued.step, queued.attempts, queued.result_image_ids) == (
        JobStatus.QUEUED.value, 0.0, 0, 0, [])  # fmt: skip
    assert (claimed.status, claimed.worker_id, claimed.attempts) == (JobStatus.RUNNING.value, "w1", 1)
    assert claimed.started_at is not None
    assert queued.created_at.tzinfo is not None
    with sessions() as session:
        stored = session.get(Job, queued.id)
        assert stored is not None
        assert (stored.status, stored.payload) == (queued.status, queued.payload)


def test_a_finish_refuses_rows_already_in_a_session(sessions: sessionmaker[Session]) -> None:
    from limner.db.models import Image

    queue, user, job = claimed_job(sessions)
    with sessions() as session:
        image = Image(owner_id=user.id, file_key="f", width=8, height=8)
        session.add(image)
        session.commit()
    with pytest.raises(ValueError, match="already in a session"):
        queue.finish(job.id, "w1", JobStatus.SUCCEEDED, rows=[image])
    with sessions() as session:
        assert session.get(Job, job.id).status == JobStatus.RUNNING.value  # type: ignore[union-attr]


def test_bounded_queue(sessions: sessionmaker[Session]) -> None:
    user = make_user(sessions)
    queue = make_queue(sessions, max_queued=2)
    enqueue(queue, sessions, user)
    enqueue(queue, sessions, user)
    with pytest.raises(QueueFullError, match="queue is full") as caught:
        enqueue(queue, sessions, user)
    assert caught.value.retry_after > 0


def test_idempotency_key_is_per_owner(sessions: sessionmaker[Session]) -> None:
    first_user, second_user = make_user(sessions, "one"), make_user(sessions, "two")
    queue = make_queue(sessions)
    a = enqueue(queue, sessions, first_user, idempotency_key="k")
    b = enqueue(queue, sessions, first_user, idempotency_key="k")
    c = enqueue(queue, sessions, second_user, idempotency_key="k")
    assert a.id == b.id != c.id


def test_cancel_queued_job(sessions: sessionmaker[Session]) -> None:
    user = make_user(sessions)
    queue = make_queue(sessions)
    job = enqueue(queue, sessions, user)
    with sessions() as session:
        owner = session.get(User, user.id)
        assert owner is not None
        canceled = queue.request_cancel(session, owner, job.id)
    assert canceled.status == JobStatus.CANCELED.value
    assert queue.claim("w") is None


def test_a_stopping_worker_releases_its_job_without_spending_an_attempt(sessions: sessionmaker[Session]) -> None:
    user = make_user(sessions)
    queue = make_queue(sessions)
    job = enqueue(queue, sessions, user)
    assert queue.claim("w1") is not None
    assert queue.release(job.id, "someone-else") is None  # only the owner may hand it back
    released = queue.release(job.id, "w1")
    assert released is not None
    assert (released.status, released.attempts, released.worker_id) == (JobStatus.QUEUED.value, 0, None)
    again = queue.claim("w2")
    assert again is not None
    assert (again.id, again.attempts) == (job.id, 1)

    with sessions() as session:  # a job asked to cancel is not handed back: it ends canceled
        queue.request_cancel(session, user, job.id)
    assert queue.release(job.id, "w2") is None


def test_many_claimers_take_each_job_once_without_lost_races(sessions: sessionmaker[Session]) -> None:
    """8 claimers, 120 jobs: every job is taken once, and a claim comes back empty only at the end.

    On PostgreSQL the claim skips rows other claimers hold (``FOR UPDATE SKIP LOCKED``); on SQLite
    the single statement runs under the database's write lock. Either way an empty claim means at
    most the other claimers' rows were left, never a lost race for the oldest row.
    """
    user = make_user(sessions)
    queue = make_queue(sessions, max_queued=1000)
    with sessions() as session:
        session.add_all(
            Job(owner_id=user.id, kind="generate", task="txt2img", payload={}, created_at=datetime.now(UTC))
            for _ in range(120)
        )
        session.commit()
    claimers = 8
    claims: list[str] = []
    left_at_empty: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(claimers)

    def work(worker: str) -> None:
        start.wait()
        while (job := queue.claim(worker)) is not None:
            with lock:
                claims.append(job.id)
        with sessions() as session:
            left = session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.status == "queued")) or 0
        with lock:
            left_at_empty.append(left)

    threads = [threading.Thread(target=work, args=(f"w{index}",)) for index in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claims) == len(set(claims)) == 120
    assert max(left_at_empty) <= claimers - 1
    with sessions() as session:
        attempts = session.scalars(sa.select(Job.attempts)).all()
    assert set(attempts) == {1}


def test_claim_by_id_takes_a_job_once(sessions: sessionmaker[Session]) -> None:
    """A duplicate delivery of a job id (Celery redelivery) finds the row taken and does nothing."""
    user = make_user(sessions)
    queue = make_queue(sessions)
    job = enqueue(queue, sessions, user)
    assert queue.claim_by_id(job.id, "w1") is not None
    assert queue.claim_by_id(job.id, "w2") is None
    assert queue.claim_by_id("no-such-job", "w2") is None


def test_newly_queued_jobs_are_dispatched(sessions: sessionmaker[Session]) -> None:
    """New, released and recovered jobs reach the dispatcher (how a broker learns of them)."""
    sent: list[tuple[str, str, str | None]] = []
    user = make_user(sessions)
    queue = make_queue(sessions, dispatch=lambda job_id, kind, model: sent.append((job_id, kind, model)))
    job = enqueue(queue, sessions, user)
    assert queue.claim("w1") is not None
    assert queue.release(job.id, "w1") is not None
    assert queue.claim("w2") is not None
    assert queue.recover(all_running=True) == (1, 0)
    assert sent == [(job.id, "generate", None)] * 3


def test_queued_jobs_whose_message_was_lost_are_dispatched_again(sessions: sessionmaker[Session]) -> None:
    """A publish that failed (broker down) or a message the broker lost (restart) is sent again later."""
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    broker_up = [False]
    sent: list[str] = []

    def dispatch(job_id: str, kind: str, model: str | None) -> None:
        if not broker_up[0]:
            raise ConnectionError("broker down")
        sent.append(job_id)

    user = make_user(sessions)
    queue = make_queue(sessions, clock=lambda: now[0], dispatch=dispatch, redispatch_after=timedelta(minutes=5))
    job = enqueue(queue, sessions, user)  # stored, its message not sent
    broker_up[0] = True
    assert queue.redispatch() == 0  # too early to call it lost
    now[0] += timedelta(minutes=6)
    assert (queue.redispatch(), sent) == (1, [job.id])
    assert queue.redispatch() == 0  # just sent
    now[0] += timedelta(minutes=6)  # still queued: the broker restarted and lost it
    assert queue.redispatch() == 1
    assert queue.claim_by_id(job.id, "w") is not None
    now[0] += timedelta(minutes=6)
    assert queue.redispatch() == 0  # a running job is never sent again


def test_finished_jobs_are_counted_as_they_finish(sessions: sessionmaker[Session]) -> None:
    from limner.db.models import JobCounter

    user = make_user(sessions)
    queue = make_queue(sessions)
    for outcome in (JobStatus.SUCCEEDED, JobStatus.SUCCEEDED, JobStatus.FAILED):
        enqueue(queue, sessions, user)
        job = queue.claim("w")
        assert job is not None
        assert queue.finish(job.id, "w", outcome, error_code="x" if outcome is JobStatus.FAILED else None) is not None
    assert queue.finish(job.id, "w", JobStatus.SUCCEEDED) is None  # a second report of one job counts nothing
    with sessions() as session:
        counters = {row.status: row.finished for row in session.query(JobCounter).all()}
    assert counters["succeeded"] == 2
    assert counters["failed"] == 1


def test_an_empty_queue_is_looked_at_without_a_write(sessions: sessionmaker[Session]) -> None:
    """A worker asks for work again after every job: on an empty queue that is one read, not an UPDATE (on
    SQLite an UPDATE takes the database's write lock, matching a row or not, and competes with the API's
    inserts for it)."""
    queue = make_queue(sessions)
    with sql_statements(sessions) as statements:
        assert queue.claim("w") is None
        assert queue.claim("w", frozenset({"train"})) is None
    assert statements
    assert all(statement.lstrip().upper().startswith("SELECT") for statement in statements), statements
    job = enqueue(queue, sessions, make_user(sessions))
    assert queue.claim("w", frozenset({"train"})) is None  # queued, but not of the kinds asked for
    claimed = queue.claim("w")
    assert claimed is not None
    assert claimed.id == job.id


def test_the_prebuilt_updates_leave_the_session_unsynchronised() -> None:
    """Each runs in a fresh session whose objects it does not change (the finish's holds the job's new
    images): the ORM's evaluation of the WHERE over them was a fifth of a finish's time."""
    from limner.services.jobs.queue_statements import QueueStatements

    statements = QueueStatements(server_clock=False)
    updates = [value for value in vars(statements).values() if isinstance(value, sa.Update)]
    updates.append(statements.claim(frozenset({"generate"}))[1])
    assert len(updates) == 5  # claim by id, the two finishes, the counter, the claim
    assert all(update.get_execution_options().get("synchronize_session") is False for update in updates)
