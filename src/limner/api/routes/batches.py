"""Batches: N ideas (from an LLM, the offline generator, or given) -> one job each -> a zip."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from limner.api.deps import GeneratorDep, ReaderDep, ServicesDep, SessionDep
from limner.api.params import Limit, Offset
from limner.api.responses import AUTHENTICATED, WITH_BODY, error_responses
from limner.batch.plan import BatchOptions, Provider
from limner.core.requests import MAX_SEED, parse_size
from limner.db.models import Batch, User
from limner.prompts.ideas import PromptIdea
from limner.prompts.ideation import generate_ideas
from limner.services.container import Services

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=error_responses(AUTHENTICATED))
MAX_BATCH_ITEMS = 100


class BatchCreate(BaseModel):
    """Give ``ideas`` (or ``prompts``), or a ``count`` of ideas to generate about ``theme``."""

    model_config = ConfigDict(extra="forbid")

    count: Annotated[int | None, Field(ge=1, le=MAX_BATCH_ITEMS)] = None
    theme: Annotated[str | None, Field(max_length=500)] = None
    ideas: list[PromptIdea] | None = Field(default=None, max_length=MAX_BATCH_ITEMS)
    prompts: list[Annotated[str, Field(min_length=1, max_length=4000)]] | None = Field(
        default=None, max_length=MAX_BATCH_ITEMS
    )
    offline: bool = False
    idea_seed: Annotated[int | None, Field(ge=0, le=MAX_SEED)] = None
    provider: Provider = "local"
    model: Annotated[str | None, Field(max_length=512)] = None
    size: Annotated[str | None, Field(max_length=16)] = None
    num_images: Annotated[int, Field(ge=1, le=16)] = 1
    seed: Annotated[int | None, Field(ge=0, le=MAX_SEED)] = None
    steps: Annotated[int | None, Field(ge=1, le=1000)] = None
    guidance_scale: Annotated[float | None, Field(ge=0, le=50)] = None


class BatchOut(BaseModel):
    id: str
    theme: str
    source: str
    options: dict[str, Any]
    items: list[dict[str, Any]]
    progress: dict[str, Any]
    created_at: datetime
    download_url: str


def _out(services: Services, session: SessionDep, batch: Batch) -> BatchOut:
    jobs = services.batches.jobs(session, batch)
    items = []
    for item in batch.items:
        job = jobs.get(item["job_id"])
        items.append({**item, "status": job.status if job else "missing",
                      "result_image_ids": list(job.result_image_ids or []) if job else [],
                      "error": job.error_message if job else None})  # fmt: skip
    return BatchOut(id=batch.id, theme=batch.theme, source=batch.source, options=batch.options, items=items,
                    progress=services.batches.progress(session, batch), created_at=batch.created_at,
                    download_url=f"/v1/batches/{batch.id}/download")  # fmt: skip


def _create(services: Services, user: User, body: BatchCreate) -> BatchOut:
    if body.ideas:
        ideas, source = list(body.ideas), "ideas given in the request"
    elif body.prompts:
        ideas = [PromptIdea(title=prompt[:60], prompt=prompt) for prompt in body.prompts]
        source = "prompts given in the request"
    else:
        ideation = generate_ideas(services.settings, body.count or 10, theme=body.theme, seed=body.idea_seed,
                                  offline=body.offline)  # fmt: skip
        ideas, source = ideation.ideas, ideation.source
    width, height = parse_size(body.size) if body.size else (None, None)
    options = BatchOptions(provider=body.provider, model=body.model, width=width, height=height,
                           num_images=body.num_images, seed=body.seed, steps=body.steps,
                           guidance_scale=body.guidance_scale)  # fmt: skip
    with services.sessions() as session:
        batch = services.batches.create(session, user, ideas, options, body.theme or "", source)
        return _out(services, session, batch)


@router.post("", response_model=BatchOut, status_code=status.HTTP_202_ACCEPTED, summary="Queue a batch",
             responses=error_responses(WITH_BODY, 404, 429, 502, 503))  # fmt: skip
async def create_batch(body: BatchCreate, user: GeneratorDep, services: ServicesDep) -> BatchOut:
    services.submissions.check_rate(user)
    return await run_in_threadpool(_create, services, user, body)


@router.get("", response_model=list[BatchOut], summary="My batches, newest first")
def list_batches(
    user: ReaderDep,
    services: ServicesDep,
    session: SessionDep,
    limit: Limit = 20,
    offset: Offset = 0,
) -> list[BatchOut]:
    return [_out(services, session, batch) for batch in services.batches.list_batches(session, user, limit, offset)]


@router.get("/{batch_id}", response_model=BatchOut, responses=error_responses(404))
def get_batch(batch_id: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> BatchOut:
    return _out(services, session, services.batches.get(session, user, batch_id))


@router.get("/{batch_id}/download", response_class=Response,
            responses={200: {"content": {"application/zip": {}}}, **error_responses(404)},
            summary="The batch as a zip: a folder per idea with images, info.md and info.json")  # fmt: skip
def download_batch(batch_id: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> Response:
    batch = services.batches.get(session, user, batch_id)
    data = services.batches.zip_bytes(session, user, batch)
    headers = {"Content-Disposition": f'attachment; filename="limner-batch-{batch.id}.zip"'}
    return Response(data, media_type="application/zip", headers=headers)
