"""Prompt ideas over HTTP: the same generator as ``limner prompts generate`` (LLM, or offline)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from limner.api.deps import GeneratorDep, ServicesDep
from limner.api.responses import AUTHENTICATED, WITH_BODY, error_responses
from limner.core.requests import MAX_SEED
from limner.prompts.ideas import PromptIdea
from limner.prompts.ideation import generate_ideas

router = APIRouter(prefix="/v1/prompts", tags=["prompts"], responses=error_responses(AUTHENTICATED))


class IdeasRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: Annotated[int, Field(ge=1, le=100)] = 10
    theme: Annotated[str | None, Field(max_length=500)] = None
    offline: bool = False
    seed: Annotated[int | None, Field(ge=0, le=MAX_SEED)] = None


class IdeasResponse(BaseModel):
    ideas: list[PromptIdea]
    source: str
    offline: bool


@router.post("/ideas", response_model=IdeasResponse, summary="Prompt ideas: title, description, tags, prompts",
             responses=error_responses(WITH_BODY, 502))  # fmt: skip
async def ideas(body: IdeasRequest, _: GeneratorDep, services: ServicesDep) -> IdeasResponse:
    made = await run_in_threadpool(
        generate_ideas, services.settings, body.count, theme=body.theme, seed=body.seed, offline=body.offline
    )
    return IdeasResponse(ideas=made.ideas, source=made.source, offline=made.offline)
