"""Jobs this process stores already claimed by one of its own idle worker threads, handed over in memory.

Why: a job queued while a worker thread of the same process waits for work was inserted by the API,
then claimed by a second transaction in the worker's thread (an UPDATE that takes SQLite's write lock
and competes with the answer for the interpreter), after the thread had been woken to look. Stored as
running by that worker in its insert instead, it costs one transaction less and reaches the thread at
once (benchmarks/overhead.py).

Only a job that comes to an empty queue is handed over, so no job overtakes an older one; with an
older job waiting, or no thread free, it is queued as before. The row says "running" from its
insert on, with the worker's id and a heartbeat, so if the process dies before the thread takes it,
the sweeper of another process (or this one's next start) re-queues it like any running job.

The protocol: the queue asks for a :meth:`HandOff.promise` before its insert (an idle thread is then
set aside for the job), and after it either :meth:`HandOff.deliver` s the committed job or
:meth:`HandOff.withdraw` s the promise. An idle thread does not leave its wait (to look at the
queue) while that would leave a promise without a thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from limner.db.models import Job

PROMISE_WAIT_SECONDS = 1.0
"""How long an idle thread held back by a promise waits before it checks again (a promise is kept or
withdrawn within the insert's transaction, milliseconds; this only bounds a wait that a notify ends)."""


class HandOff:
    """Between a :class:`~limner.services.jobs.queue.JobQueue` and the worker threads of this process."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._worker_id: str | None = None  # None: no worker of this process claims (closed)
        self._kinds: frozenset[str] = frozenset()
        self._idle = 0
        self._promised = 0
        self._handed: deque[Job] = deque()
        self._queued = False

    # -- the worker ------------------------------------------------------------------------

    def open(self, worker_id: str, kinds: frozenset[str]) -> None:
        """Start handing jobs of ``kinds`` to the claiming threads of ``worker_id``."""
        with self._changed:
            if self._worker_id not in (None, worker_id):
                raise RuntimeError(f"jobs of this queue are handed to worker {self._worker_id} already")
            self._worker_id, self._kinds = worker_id, kinds

    def close(self) -> list[Job]:
        """Stop handing jobs over and wake every waiting thread; returns the jobs delivered but not taken
        (the worker gives them back to the queue)."""
        with self._changed:
            self._worker_id = None
            left = list(self._handed)
            self._handed.clear()
            self._changed.notify_all()
            return left

    def wait(self, timeout: float) -> Job | bool:
        """Wait for work, as an idle thread: a job handed over (claimed by this worker already), or
        True when a job was queued in this process (claim it without reading the queue first), or
        False when ``timeout`` passed (look at the queue) or the hand-off closed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._idle += 1
            try:
                while True:
                    if self._worker_id is None:
                        return False
                    if self._handed:
                        return self._handed.popleft()
                    free_to_leave = self._idle - 1 >= self._promised  # the promises keep their threads
                    if self._queued and free_to_leave:
                        self._queued = False
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 and free_to_leave:
                        return False
                    self._changed.wait(remaining if remaining > 0 else PROMISE_WAIT_SECONDS)
            finally:
                self._idle -= 1

    # -- the queue -------------------------------------------------------------------------

    def queued(self) -> None:
        """A job was queued in this process: wake a waiting thread to claim it."""
        with self._changed:
            self._queued = True
            self._changed.notify()

    def promise(self, kind: str) -> str | None:
        """Set an idle thread aside for a job of ``kind`` about to be stored; the id of the worker to
        store it as claimed by, or None (no thread free: queue it)."""
        with self._changed:
            if self._worker_id is None or kind not in self._kinds or self._idle - self._promised <= 0:
                return None
            self._promised += 1
            return self._worker_id

    def deliver(self, job: Job) -> bool:
        """Hand the committed ``job`` to the thread set aside for it; False when the worker has closed
        meanwhile (the caller gives the job back to the queue)."""
        with self._changed:
            self._promised -= 1
            if self._worker_id is None or job.worker_id != self._worker_id:
                self._changed.notify_all()
                return False
            self._handed.append(job)
            self._changed.notify_all()
            return True

    def withdraw(self) -> None:
        """The job of a promise was not stored (a failed insert, an idempotent replay)."""
        with self._changed:
            self._promised -= 1
            self._changed.notify_all()
