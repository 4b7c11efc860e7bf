"""Job submission: idempotency, then the per-user rate limit, then the queue — in that order.

Why this order: a retry that carries an Idempotency-Key already answered must get the same job back
and must not count against the rate limit; a request over the limit must be refused before
anything is stored, so a 429 never leaves a job behind.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from limner.core.errors import InvalidRequestError, RateLimitedError
from limner.db.models import Job, User
from limner.services.auth.throttle import SlidingWindow
from limner.services.jobs.queue import JobQueue, NewJob

MAX_IDEMPOTENCY_KEY_LENGTH = 255


class Submissions:
    """The one way entry points store a job (the API's generation, OpenAI-compatible and training routes)."""

    def __init__(self, queue: JobQueue, rate: SlidingWindow, jobs_per_minute: int) -> None:
        self._queue = queue
        self._rate = rate
        self._jobs_per_minute = jobs_per_minute

    def check_rate(self, user: User) -> None:
        """Count one job creation for ``user``, or refuse it with the seconds to wait."""
        wait = self._rate.try_hit(user.id)
        if wait:
            raise RateLimitedError(
                f"at most {self._jobs_per_minute} jobs per minute; retry in {wait:.0f}s", retry_after=wait
            )

    def replay(self, session: Session, user: User, idempotency_key: str | None) -> Job | None:
        """The job stored earlier under this key, if any (checked before any other work is done)."""
        if idempotency_key is None:
            return None
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise InvalidRequestError(
                f"an Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters", param="Idempotency-Key"
            )
        return self._queue.find_idempotent(session, user, idempotency_key)

    def submit(self, session: Session, user: User, new: NewJob) -> tuple[Job, bool]:
        """Store the job; return it and whether it is new (False: a replay of the same Idempotency-Key)."""
        existing = self.replay(session, user, new.idempotency_key)
        if existing is not None:
            return existing, False
        self.check_rate(user)
        return self._queue.enqueue(session, user, new)
