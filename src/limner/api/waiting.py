"""Waiting for a job from an async route (the sync endpoints), without blocking the event loop.

Submission itself (idempotency, validation, rate limit, enqueue) is a service:
:class:`limner.services.jobs.generate.GenerationJobs` and :class:`limner.services.jobs.submission.Submissions`.

Why the final event is trusted: the worker publishes a job's end only after the row (and, for a
success, the gallery's images) are committed, and the event carries the status, the image ids and
the error. So the row is read once, after subscribing (the job may have ended before that), and
again only when no event came for a while (the slow poll, a safety net). A job stored through
:func:`submit_and_wait` is subscribed to before it exists: its row is not read first at all.
Step events are not delivered to a sync wait at all: each would wake the event loop, which shares
the interpreter with the thread that runs the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.concurrency import run_in_threadpool

from limner.core.errors import LimnerError, error_from_code
from limner.db.models import Job, JobStatus, new_id
from limner.services.container import Services
from limner.services.jobs.events import ENDS

POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Finished:
    """How a job ended, as its row or its final event says."""

    job_id: str
    status: str
    result_image_ids: list[str] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None

    @property
    def done(self) -> bool:
        return JobStatus(self.status).finished

    @classmethod
    def of_job(cls, job: Job) -> Finished:
        return cls(job.id, job.status, list(job.result_image_ids or []), job.error_code, job.error_message)

    @classmethod
    def of_event(cls, job_id: str, event: dict[str, Any]) -> Finished:
        error = event.get("error") or {}
        return cls(job_id, str(event["status"]), list(event.get("result_image_ids") or []),
                   error.get("code"), error.get("message"))  # fmt: skip


async def wait_for(services: Services, job_id: str, timeout: float) -> Finished:
    """Wait until a stored job finishes (its final event, with a slow poll as a safety net); raise on failure."""
    async with services.events.subscribe(job_id, ends_only=True) as events:
        return await _until_finished(services, job_id, timeout, events, read_first=True)


async def submit_and_wait(services: Services, submit: Callable[[str], Awaitable[str]], timeout: float) -> Finished:
    """Store a job and wait until it finishes; raise on failure.

    ``submit(job_id)`` stores the job under ``job_id`` (generated here) and returns the id it stored,
    another one when an Idempotency-Key replays an earlier job. Why the id comes first: the wait
    subscribes to the job's events before the job exists, so on a bus that delivers from the
    subscription on, the final event cannot be missed and the row is never read (one session and two
    thread hops fewer on the path of every sync answer).
    """
    job_id = new_id()
    async with services.events.subscribe(job_id, ends_only=True) as events:
        stored = await submit(job_id)
        if stored == job_id:
            read_first = not services.events.delivers_from_subscribe
            return await _until_finished(services, job_id, timeout, events, read_first=read_first)
    return await wait_for(services, stored, timeout)


async def _until_finished(
    services: Services, job_id: str, timeout: float, events: asyncio.Queue[dict[str, Any]], *, read_first: bool
) -> Finished:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = Finished(job_id, JobStatus.QUEUED.value)
    if read_first:  # the job may have ended before the subscription
        state = Finished.of_job(await run_in_threadpool(_load, services, job_id))
    while not state.done:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise LimnerError(f"job {job_id} did not finish within {timeout:.0f}s; follow it at /v1/jobs/{job_id}")
        try:
            event = await asyncio.wait_for(events.get(), timeout=min(remaining, POLL_SECONDS))
        except TimeoutError:
            state = Finished.of_job(await run_in_threadpool(_load, services, job_id))
            continue
        if event.get("status") in ENDS:  # only ends are delivered here; checked all the same
            state = Finished.of_event(job_id, event)
    if state.status == JobStatus.SUCCEEDED.value:
        return state
    raise error_from_code(state.error_code, state.error_message or f"job {state.status}")


def _load(services: Services, job_id: str) -> Job:
    with services.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job
