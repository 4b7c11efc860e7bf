"""The queue's hot statements (claim, finish, count), built once with bound parameters.

Why: building an ORM UPDATE (its WHERE, VALUES, RETURNING and the subquery that picks the oldest
job) and computing its cache key cost about 40% of a claim's or finish's time, on the path of every
job. The statements are immutable; each execution only binds the values, named ``p_<column>``
(SQLAlchemy reserves the columns' own names in an UPDATE). On PostgreSQL, ``now`` is the server's
clock, written into the statement instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, Float, Select, String, Update, bindparam, func, insert, select, update

from limner.db.models import Job, JobCounter, JobStatus, UTCDateTime


class QueueStatements:
    """Built once per queue. ``server_clock``: ``now`` is the database's ``now()``; else it is bound as
    ``now`` at each execution (:meth:`clock`)."""

    def __init__(self, server_clock: bool) -> None:
        self._server_clock = server_clock
        self.take_by_id = self._take(Job.id == bindparam("p_job_id", type_=String()))
        self.finish_succeeded = self._finish(succeeded=True)
        self.finish_other = self._finish(succeeded=False)
        self.count_finished = (  # add one job of ``status`` that ran ``seconds`` to its counter
            update(JobCounter)
            .where(JobCounter.status == bindparam("p_status", type_=String()))
            .values(
                finished=JobCounter.finished + 1, seconds=JobCounter.seconds + bindparam("p_seconds", type_=Float())
            )
            .execution_options(synchronize_session=False)  # run on the finish's connection: nothing loaded
        )
        self.queued_count = select(func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED.value)
        self.insert_queued = insert(Job).returning(Job)  # a new job (its columns: the parameters, else defaults)
        self.insert_claimed = (  # a new job, running from its insert on (its other columns: the parameters)
            insert(Job).values(started_at=self._now(), heartbeat_at=self._now()).returning(Job)
        )
        self._claims: dict[frozenset[str] | None, tuple[Select[str], Update]] = {}

    def clock(self, now: datetime) -> dict[str, Any]:
        """The ``now`` parameter, unless the server's clock is written into the statements."""
        return {} if self._server_clock else {"p_now": now}

    def claim(self, kinds: frozenset[str] | None) -> tuple[Select[str], Update]:
        """The look (any queued job of ``kinds``?) and the claim of the oldest (by ``worker_id``)."""
        if kinds not in self._claims:  # a worker asks for one set of kinds; two threads may build it twice
            queued = select(Job.id).where(Job.status == JobStatus.QUEUED.value)
            if kinds is not None:
                queued = queued.where(Job.kind.in_(sorted(kinds)))
            oldest = queued.order_by(Job.created_at, Job.id).limit(1).with_for_update(skip_locked=True)
            self._claims[kinds] = (queued.limit(1), self._take(Job.id == oldest.scalar_subquery()))
        return self._claims[kinds]

    def _now(self) -> ColumnElement[datetime]:
        return func.now() if self._server_clock else bindparam("p_now", type_=UTCDateTime())

    def _take(self, which: ColumnElement[bool]) -> Update:
        """Mark the job ``which`` picks as running for ``worker_id``, returning the whole row."""
        now = self._now()
        return (
            update(Job)
            .where(which, Job.status == JobStatus.QUEUED.value)
            .values(
                status=JobStatus.RUNNING.value,
                worker_id=bindparam("p_worker_id", type_=String()),
                started_at=now,
                heartbeat_at=now,
                attempts=Job.attempts + 1,
            )
            .returning(Job)  # the whole row in the same statement: no second read
            .execution_options(synchronize_session=False)  # a fresh session: nothing loaded to update
        )

    def _finish(self, *, succeeded: bool) -> Update:
        """End ``job_id`` if ``worker_id`` still runs it: ``status`` and, for a success, its images
        (``result_image_ids``) and last step; for another end, ``error_code`` and ``error_message``."""
        values: dict[str, Any] = {"status": bindparam("p_status", type_=String()), "finished_at": self._now()}
        if succeeded:
            values.update(progress=1.0, step=Job.total_steps,
                          result_image_ids=bindparam("p_result_image_ids", type_=JSON()))  # fmt: skip
        else:
            values.update(error_code=bindparam("p_error_code", type_=String()),
                          error_message=bindparam("p_error_message", type_=String()))  # fmt: skip
        return (
            update(Job)
            .where(
                Job.id == bindparam("p_job_id", type_=String()),
                Job.worker_id == bindparam("p_worker_id", type_=String()),
                Job.status == JobStatus.RUNNING.value,
            )
            .values(**values)
            .returning(Job)
            .execution_options(synchronize_session=False)  # a fresh session: nothing loaded to update
        )
