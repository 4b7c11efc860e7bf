"""The durable job queue: a table, claimed atomically, recovered after crashes.

Why a table: a job is committed before the API answers 202, so a restart loses nothing. A worker
claims a job with one UPDATE statement whose WHERE picks the oldest queued row and re-checks
``status = 'queued'``; only one claimer sees the row come back, so two workers never run the same job:

- PostgreSQL: the picking sub-select is ``FOR UPDATE SKIP LOCKED`` (procrastinate's claim): claimers
  that arrive together each take a different row instead of all racing for the oldest one, so a
  claim comes back empty only when every queued row is being taken by someone else.
- SQLite: one writer at a time holds the database lock for the whole statement, so the same
  statement is atomic without row locks (SQLite ignores ``FOR UPDATE``).

Time: heartbeats, claims and the staleness cut-off use the database's clock (``now()``) on
PostgreSQL, so workers on machines whose clocks disagree judge each other by one clock. A SQLite
file lives on one machine, whose clock all its processes share. A running job whose worker stops
heart-beating is re-queued (or failed after ``max_attempts``); ``dispatch`` is told about every job
that becomes queued (new, released, recovered), which is how a Celery broker learns of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from limner.core.errors import ConflictError, NotFoundError, QueueFullError
from limner.core.jobs import GenerateJob, JobKind, TrainJob
from limner.db.base import utcnow
from limner.db.models import Job, JobCounter, JobStatus, User

QUEUE_FULL_RETRY_SECONDS = 30

Dispatch = Callable[[str, str, str | None], None]
"""Told ``(job_id, kind, model)`` after a job became queued and was committed (e.g. sends a Celery message)."""

Queued = tuple[str, str, str | None]

logger = logging.getLogger(__name__)


def _rowcount(result: Any) -> int:
    """Rows an UPDATE touched (the claim and cancel races are decided by this number)."""
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


@dataclass(frozen=True)
class NewJob:
    """What a caller asks for; everything else about a job is set by the queue."""

    payload: GenerateJob | TrainJob
    idempotency_key: str | None = None
    webhook_url: str | None = None
    deadline_seconds: float | None = None


@dataclass(frozen=True)
class JobFilter:
    status: JobStatus | None = None
    task: str | None = None
    kind: JobKind | None = None
    limit: int = 50
    offset: int = 0


class JobQueue:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_queued: int,
        max_attempts: int,
        heartbeat_timeout: timedelta,
        clock: Callable[[], datetime] | None = None,
        dispatch: Dispatch | None = None,
        redispatch_after: timedelta = timedelta(minutes=5),
    ) -> None:
        """``clock`` replaces the database's clock (tests); ``dispatch`` hears of every newly queued job.

        ``redispatch_after``: a job still queued this long after its last message is sent again
        (:meth:`redispatch`), so a broker that lost messages loses no job.
        """
        self._sessions = sessions
        self._max_queued = max_queued
        self._max_attempts = max_attempts
        self._heartbeat_timeout = heartbeat_timeout
        self._clock = clock
        self._dispatch = dispatch
        self._redispatch_after = redispatch_after
        bind = sessions.kw.get("bind")
        self._server_clock = clock is None and bind is not None and bind.dialect.name == "postgresql"
        self.wakeup = threading.Event()

    @property
    def heartbeat_timeout(self) -> timedelta:
        return self._heartbeat_timeout

    def _now(self) -> datetime | ColumnElement[datetime]:
        """The time to write or compare with: the database server's ``now()`` on PostgreSQL."""
        if self._server_clock:
            return func.now()
        return self._clock() if self._clock is not None else utcnow()

    def _local_now(self) -> datetime:
        """A Python datetime for values computed here (creation time, deadlines)."""
        return self._clock() if self._clock is not None else utcnow()

    def _queued(self, jobs: list[Queued]) -> None:
        """Wake local claimers and tell the dispatcher; a failed dispatch leaves the job queued in the table."""
        if not jobs:
            return
        self.wakeup.set()
        if self._dispatch is None:
            return
        sent = []
        for job_id, kind, model in jobs:
            try:
                self._dispatch(job_id, kind, model)
            except Exception:  # the row is committed; redispatch() sends it again later
                logger.exception("could not dispatch job %s", job_id)
            else:
                sent.append(job_id)
        if sent:
            with self._sessions() as session:
                session.execute(update(Job).where(Job.id.in_(sent)).values(dispatched_at=self._now()))
                session.commit()

    def redispatch(self, limit: int = 500) -> int:
        """Send again the queued jobs whose last message is older than ``redispatch_after`` (or never went out).

        Why: the broker may lose messages (a restart without persistence, a failed publish while it
        was down). The table still says "queued", so the message is sent again; if the first one
        does arrive after all, the second claim finds the job taken and does nothing.
        """
        if self._dispatch is None:
            return 0
        cutoff = self._now() - self._redispatch_after
        with self._sessions() as session:
            waiting = [
                (str(job_id), str(kind), model)
                for job_id, kind, model in session.execute(
                    select(Job.id, Job.kind, Job.model)
                    .where(
                        Job.status == JobStatus.QUEUED.value,
                        func.coalesce(Job.dispatched_at, Job.created_at) < cutoff,
                    )
                    .order_by(Job.created_at)
                    .limit(limit)
                )
            ]
        if waiting:
            logger.warning("sending %d queued job(s) to the broker again", len(waiting))
        self._queued(waiting)
        return len(waiting)

    # -- producers -------------------------------------------------------------------------

    def enqueue(self, session: Session, owner: User, new: NewJob) -> tuple[Job, bool]:
        """Store a job; return it and whether it is new (False: same Idempotency-Key as before)."""
        if new.idempotency_key:
            existing = self._by_idempotency_key(session, owner.id, new.idempotency_key)
            if existing is not None:
                return existing, False
        if self.queued_count(session) >= self._max_queued:
            raise QueueFullError(
                f"the queue is full ({self._max_queued} jobs waiting); try again later",
                retry_after=QUEUE_FULL_RETRY_SECONDS,
            )
        now = self._local_now()
        request = new.payload.request
        job = Job(
            owner_id=owner.id,
            kind=new.payload.kind,
            task=request.task.value,
            model=request.model,
            payload=new.payload.model_dump(mode="json", exclude_defaults=False),
            idempotency_key=new.idempotency_key,
            webhook_url=new.webhook_url,
            deadline_at=now + timedelta(seconds=new.deadline_seconds) if new.deadline_seconds else None,
            total_steps=request.steps,
            created_at=now,
        )
        session.add(job)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            if new.idempotency_key:
                existing = self._by_idempotency_key(session, owner.id, new.idempotency_key)
                if existing is not None:
                    return existing, False
            raise
        self._queued([(job.id, job.kind, job.model)])
        return job, True

    def find_idempotent(self, session: Session, owner: User, key: str) -> Job | None:
        """The owner's job stored earlier under this Idempotency-Key, if any."""
        return self._by_idempotency_key(session, owner.id, key)

    def _by_idempotency_key(self, session: Session, owner_id: str, key: str) -> Job | None:
        return session.scalar(select(Job).where(Job.owner_id == owner_id, Job.idempotency_key == key))

    def queued_count(self, session: Session) -> int:
        return session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED.value)) or 0

    def position(self, session: Session, job: Job) -> int | None:
        """1-based place in line for a queued job; None once it left the queue."""
        if job.status != JobStatus.QUEUED.value:
            return None
        ahead = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.status == JobStatus.QUEUED.value, Job.created_at < job.created_at)
        )
        return (ahead or 0) + 1

    # -- readers ---------------------------------------------------------------------------

    def get(self, session: Session, user: User, job_id: str) -> Job:
        """The job if ``user`` may see it (owner or admin); otherwise it does not exist for them."""
        job = session.get(Job, job_id)
        if job is None or (job.owner_id != user.id and not user.is_admin):
            raise NotFoundError(f"no job {job_id!r}", param="job_id")
        return job

    def list_jobs(self, session: Session, user: User, filters: JobFilter) -> tuple[list[Job], int]:
        query = select(Job)
        if not user.is_admin:
            query = query.where(Job.owner_id == user.id)
        if filters.status is not None:
            query = query.where(Job.status == filters.status.value)
        if filters.task is not None:
            query = query.where(Job.task == filters.task)
        if filters.kind is not None:
            query = query.where(Job.kind == filters.kind)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Job.created_at.desc(), Job.id).limit(filters.limit).offset(filters.offset)
        ).all()
        return list(rows), total

    def request_cancel(self, session: Session, user: User, job_id: str) -> Job:
        """Cancel a queued job at once; ask a running one to stop (it ends within a step)."""
        job = self.get(session, user, job_id)
        status = JobStatus(job.status)
        if status.finished:
            raise ConflictError(f"job {job_id} already {status.value}; nothing to cancel", param="job_id")
        now = self._now()
        canceled_now = _rowcount(
            session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == JobStatus.QUEUED.value)
                .values(
                    status=JobStatus.CANCELED.value,
                    finished_at=now,
                    cancel_requested=True,
                    error_code="canceled",
                    error_message="canceled before it started",
                )
            )
        )
        if not canceled_now:
            session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
        session.commit()
        session.refresh(job)
        return job

    # -- workers ---------------------------------------------------------------------------

    def claim(self, worker_id: str, kinds: frozenset[str] | None = None) -> Job | None:
        """Atomically take the oldest queued job (of ``kinds``), or None when there is none free.

        One statement: ``UPDATE jobs SET status='running' ... WHERE status='queued' AND id =
        (SELECT id ... ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id``.
        """
        oldest = select(Job.id).where(Job.status == JobStatus.QUEUED.value)
        if kinds is not None:
            oldest = oldest.where(Job.kind.in_(kinds))
        picked = oldest.order_by(Job.created_at, Job.id).limit(1).with_for_update(skip_locked=True)
        return self._take(worker_id, Job.id == picked.scalar_subquery())

    def claim_by_id(self, job_id: str, worker_id: str) -> Job | None:
        """Take this job if it is still queued; None when it is not (a duplicate delivery, a cancel)."""
        return self._take(worker_id, Job.id == job_id)

    def _take(self, worker_id: str, which: ColumnElement[bool]) -> Job | None:
        now = self._now()
        with self._sessions() as session:
            taken = session.execute(
                update(Job)
                .where(which, Job.status == JobStatus.QUEUED.value)
                .values(
                    status=JobStatus.RUNNING.value,
                    worker_id=worker_id,
                    started_at=now,
                    heartbeat_at=now,
                    attempts=Job.attempts + 1,
                )
                .returning(Job)  # the whole row in the same statement: no second read
                .execution_options(synchronize_session=False)  # a fresh session: nothing loaded to update
            ).scalar()
            session.commit()
            return taken

    def heartbeat(
        self, job_id: str, worker_id: str, *, step: int | None = None, total_steps: int | None = None
    ) -> bool:
        """Say the job is alive (and its progress, when given); True when it was asked to cancel or lost.

        Called by the worker's heartbeat thread all through a job (loading, downloading, remote calls,
        training) and by the progress callback between steps.
        """
        values: dict[str, Any] = {"heartbeat_at": self._now()}
        if step is not None and total_steps is not None:
            values.update(step=step, total_steps=total_steps, progress=step / total_steps if total_steps else 0.0)
        with self._sessions() as session:
            updated = _rowcount(
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING.value)
                    .values(**values)
                )
            )
            session.commit()
            if not updated:
                return True
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        *,
        result_image_ids: list[str] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> Job | None:
        """Record the outcome, if this worker still owns the job: the row and its status's counter, one commit.

        A success also writes the last step (the worker writes no progress row at the last step).
        """
        values: dict[str, Any] = {"status": status.value, "finished_at": self._now()}
        if status is JobStatus.SUCCEEDED:
            values.update(progress=1.0, step=Job.total_steps, result_image_ids=result_image_ids or [])
        else:
            values.update(error_code=error_code, error_message=error_message)
        for attempt in range(2):
            with self._sessions() as session:
                job = session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING.value)
                    .values(**values)
                    .returning(Job)
                    .execution_options(synchronize_session=False)  # a fresh session: nothing loaded to update
                ).scalar()
                if job is None:
                    session.rollback()
                    return None
                self._count_finished(session, job)
                try:
                    session.commit()
                except IntegrityError:  # another process added the counter row first: count again on it
                    session.rollback()
                    if attempt:
                        raise
                    continue
                return job
        return None  # not reached: the second attempt returns or raises

    def _count_finished(self, session: Session, job: Job) -> None:
        """Add a finished job to its status's counter (read by /metrics instead of every job row); no commit."""
        if job.started_at is None or job.finished_at is None:
            return
        seconds = max(0.0, (job.finished_at - job.started_at).total_seconds())
        counted = _rowcount(
            session.execute(
                update(JobCounter)
                .where(JobCounter.status == job.status)
                .values(finished=JobCounter.finished + 1, seconds=JobCounter.seconds + seconds)
            )
        )
        if not counted:
            session.add(JobCounter(status=job.status, finished=1, seconds=seconds))

    def release(self, job_id: str, worker_id: str) -> Job | None:
        """Give a job this worker is stopping for back to the queue, its attempt not counted.

        Why: a worker shut down on purpose (a deploy, a scale-in) did not fail the job; it returns
        it for another worker to run from the start. A job asked to cancel is not released.
        """
        with self._sessions() as session:
            released = _rowcount(
                session.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.worker_id == worker_id,
                        Job.status == JobStatus.RUNNING.value,
                        Job.cancel_requested.is_(False),
                    )
                    .values(
                        status=JobStatus.QUEUED.value, worker_id=None, step=0, progress=0.0, attempts=Job.attempts - 1
                    )
                )
            )
            session.commit()
            if not released:
                return None
            job = session.get(Job, job_id)
        if job is not None:
            self._queued([(job.id, job.kind, job.model)])
        return job

    def recover(self, *, all_running: bool = False) -> tuple[int, int]:
        """Re-queue or fail running jobs whose worker is gone. Returns (requeued, failed).

        ``all_running`` is for the start of an embedded server: no worker of this process runs
        yet, so every "running" job belongs to a process that died.
        """
        now = self._now()
        stale = Job.status == JobStatus.RUNNING.value
        if not all_running:
            cutoff = now - self._heartbeat_timeout
            stale = stale & or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff)
        with self._sessions() as session:
            failed = _rowcount(
                session.execute(
                    update(Job)
                    .where(stale, Job.attempts >= self._max_attempts)
                    .values(
                        status=JobStatus.FAILED.value,
                        finished_at=now,
                        error_code="worker_lost",
                        error_message=f"the worker stopped while running this job ({self._max_attempts} attempts)",
                    )
                )
            )
            requeued = [
                (str(job_id), str(kind), model)
                for job_id, kind, model in session.execute(
                    update(Job)
                    .where(stale, Job.attempts < self._max_attempts)
                    .values(status=JobStatus.QUEUED.value, worker_id=None, step=0, progress=0.0)
                    .returning(Job.id, Job.kind, Job.model)
                )
            ]
            session.commit()
        self._queued(requeued)
        return len(requeued), failed
