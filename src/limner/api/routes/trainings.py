"""Trainings: upload a zip of subject pictures, fine-tune as a queued job, get a registered model."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from limner.api.deps import GeneratorDep, ReaderDep, ServicesDep, SessionDep
from limner.api.params import Limit, Offset
from limner.api.responses import AUTHENTICATED, UPLOADS, WITH_BODY, error_responses
from limner.api.schemas import JobOut, Page
from limner.core.errors import InvalidRequestError
from limner.db.models import User
from limner.finetune.config import DreamBoothConfig
from limner.presets import invalid_request_from
from limner.services.container import Services
from limner.services.jobs.queue import JobFilter

router = APIRouter(prefix="/v1/trainings", tags=["trainings"], responses=error_responses(AUTHENTICATED))


def _submit(services: Services, user: User, name: str, base: str | None, cfg: DreamBoothConfig, data: bytes) -> JobOut:
    with services.sessions() as session:
        job = services.training_jobs.queue(session, user, name, base, cfg, data)
        return JobOut.of(job, services.queue.position(session, job))


@router.post(
    "",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Fine-tune (DreamBooth/LoRA) on a zip of pictures; the result is registered as `name`",
    responses=error_responses(WITH_BODY, UPLOADS, 409, 429, 503),
)
async def create_training(
    user: GeneratorDep,
    services: ServicesDep,
    dataset: Annotated[UploadFile, File(description="A zip of PNG/JPEG/WebP pictures (sub-folders per class)")],
    name: Annotated[str, Form(max_length=64)],
    config: Annotated[str, Form(description='DreamBoothConfig as JSON, e.g. {"instance_prompt": "a sks dog"}')],
    base: Annotated[str | None, Form(max_length=512)] = None,
) -> JobOut:
    try:
        cfg = DreamBoothConfig.model_validate(json.loads(config))
    except json.JSONDecodeError as exc:
        raise InvalidRequestError("config is not valid JSON", param="config") from exc
    except ValidationError as exc:
        raise invalid_request_from(exc) from exc
    data = await dataset.read()
    return await run_in_threadpool(_submit, services, user, name, base, cfg, data)


@router.get("", response_model=Page[JobOut], summary="My training jobs")
def list_trainings(
    user: ReaderDep, services: ServicesDep, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[JobOut]:
    jobs, total = services.queue.list_jobs(session, user, JobFilter(kind="train", limit=limit, offset=offset))
    return Page[JobOut](items=[JobOut.of(job) for job in jobs], total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobOut, summary="A training job (validation pictures are its images)",
            responses=error_responses(404))  # fmt: skip
def get_training(job_id: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> JobOut:
    job = services.queue.get(session, user, job_id)
    if job.kind != "train":
        raise InvalidRequestError(f"job {job_id} is not a training", param="job_id")
    return JobOut.of(job, services.queue.position(session, job))
