"""Turning an API call into a queued job, and waiting for one: shared by native and OpenAI routes.

Why here: every entry point must validate the request fully (presets, limits, model reference,
input images) before a job is stored, apply the per-user rate limit, and, for the synchronous
endpoints, wait on the event bus without ever blocking the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from limner.core.errors import InvalidRequestError, LimnerError, RateLimitedError, error_from_code
from limner.core.requests import GenerationRequest
from limner.db.models import Job, JobStatus, User
from limner.presets import build_request, load_presets
from limner.services.container import Services
from limner.services.jobs.generate import REFERENCE_PREFIX, job_inputs
from limner.services.jobs.queue import NewJob
from limner.styles import load_styles

IMAGE_REF_PREFIX = "image:"


def check_rate(services: Services, user: User) -> None:
    wait = services.job_rate.try_hit(user.id)
    if wait:
        raise RateLimitedError(
            f"at most {services.settings.jobs_per_minute} jobs per minute; retry in {wait:.0f}s", retry_after=wait
        )


def build_generation(
    services: Services,
    session: Session,
    user: User,
    fields: dict[str, Any],
    preset: str | None,
    init_image_id: str | None,
    mask_image_id: str | None,
    reference_image_ids: list[str] | None = None,
) -> tuple[GenerationRequest, dict[str, str]]:
    """Validate into a request whose inputs are gallery images (and a character) the user owns."""
    inputs: dict[str, str] = {}
    if init_image_id:
        fields["init_image"] = IMAGE_REF_PREFIX + init_image_id
        inputs["init_image"] = init_image_id
    if mask_image_id:
        fields["mask_image"] = IMAGE_REF_PREFIX + mask_image_id
        inputs["mask_image"] = mask_image_id
    for index, image_id in enumerate(reference_image_ids or []):
        inputs[f"{REFERENCE_PREFIX}{index}"] = image_id
    if reference_image_ids:
        fields["reference_images"] = [IMAGE_REF_PREFIX + image_id for image_id in reference_image_ids]
    settings = services.settings
    request = build_request(fields, load_presets(settings.presets_file), preset, load_styles(settings.styles_file))
    pictures = job_inputs(services.gallery, services.characters, session, user, request, inputs)
    services.engine.validate(request, pictures)
    return request, inputs


def submit(
    services: Services,
    session: Session,
    user: User,
    request: GenerationRequest,
    inputs: dict[str, str],
    *,
    idempotency_key: str | None = None,
    webhook_url: str | None = None,
    deadline_seconds: float | None = None,
) -> tuple[Job, bool]:
    if idempotency_key is not None and len(idempotency_key) > 255:
        raise InvalidRequestError("at most 255 characters", param="Idempotency-Key")
    if idempotency_key is None:
        check_rate(services, user)
    new = NewJob(
        request=request,
        input_image_ids=inputs,
        idempotency_key=idempotency_key,
        webhook_url=webhook_url,
        deadline_seconds=deadline_seconds,
    )
    job, created = services.queue.enqueue(session, user, new)
    if created and idempotency_key is not None:
        check_rate(services, user)
    return job, created


async def wait_for(services: Services, job_id: str, timeout: float) -> Job:
    """Wait until the job finishes (events, with a slow poll as a safety net); raise on failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with services.events.subscribe(job_id) as events:
        while True:
            job = await run_in_threadpool(_load, services, job_id)
            if JobStatus(job.status).finished:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise LimnerError(f"job {job_id} did not finish within {timeout:.0f}s; follow it at /v1/jobs/{job_id}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(events.get(), timeout=min(remaining, 2.0))
    if job.status == JobStatus.SUCCEEDED.value:
        return job
    raise error_from_code(job.error_code, job.error_message or f"job {job.status}")


def _load(services: Services, job_id: str) -> Job:
    with services.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job
