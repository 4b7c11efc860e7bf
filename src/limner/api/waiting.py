"""Waiting for a job from an async route (the sync endpoints), without blocking the event loop.

Submission itself (idempotency, validation, rate limit, enqueue) is a service:
:class:`limner.services.jobs.generate.GenerationJobs` and :class:`limner.services.jobs.submission.Submissions`.
"""

from __future__ import annotations

import asyncio

from fastapi.concurrency import run_in_threadpool

from limner.core.errors import LimnerError, error_from_code
from limner.db.models import Job, JobStatus
from limner.services.container import Services


async def wait_for(services: Services, job_id: str, timeout: float) -> Job:
    """Wait until the job finishes (events, with a slow poll as a safety net); raise on failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with services.events.subscribe(job_id) as events:
        while True:
            job = await run_in_threadpool(_load, services, job_id)
            if JobStatus(job.status).finished:
                break
            # Step events say "running": only an event that may end the job (or the slow poll) reloads the row.
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise LimnerError(
                        f"job {job_id} did not finish within {timeout:.0f}s; follow it at /v1/jobs/{job_id}"
                    )
                try:
                    event = await asyncio.wait_for(events.get(), timeout=min(remaining, 2.0))
                except TimeoutError:
                    break
                if event.get("status") != JobStatus.RUNNING.value:
                    break
    if job.status == JobStatus.SUCCEEDED.value:
        return job
    raise error_from_code(job.error_code, job.error_message or f"job {job.status}")


def _load(services: Services, job_id: str) -> Job:
    with services.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job
