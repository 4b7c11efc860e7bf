"""``GET /v1/capabilities``: which tasks, models, presets, styles and providers will run for me here.

Why a route of its own: clients (the studio first) offer only what will run and say why the rest is
missing, instead of letting a job fail after it was queued. The answer is read from configuration
files (see ``services/capabilities.py``); it names no key, settings variable or server path.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from limner.api.deps import ReaderDep, ServicesDep, SessionDep
from limner.api.responses import AUTHENTICATED, error_responses
from limner.services.capabilities import server_capabilities
from limner.styles import load_styles

router = APIRouter(prefix="/v1/capabilities", tags=["capabilities"], responses=error_responses(AUTHENTICATED))


class ModelCapabilitiesOut(BaseModel):
    name: str
    kind: str = Field(description="base, lora or finetuned")
    family: str = Field(description="sd, sdxl, flux ... (unknown when its config is not on this server yet)")
    tasks: list[str]
    default: bool = Field(description="The model used when a request names none")
    base_model: str | None = None
    checked: bool = Field(description="True when the tasks were read from the model's own config files")
    note: str = ""
    width: int | None = Field(default=None, description="Width of a picture when the request gives none")
    height: int | None = None
    steps: int | None = Field(default=None, description="Its tuned number of steps, if it has one")


class OfferOut(BaseModel):
    name: str
    description: str
    available: bool
    task: str | None = None
    reason: str = Field(default="", description="Why it is not available (and what to do), or a hint")


class MissingOut(BaseModel):
    capability: str
    reason: str = Field(description="A sentence for a person: what is missing and what to do")


class CapabilitiesOut(BaseModel):
    default_model: str
    models: list[ModelCapabilitiesOut]
    tasks: dict[str, bool] = Field(description="Whether any model (or preset, or provider) here runs each task")
    providers: list[str] = Field(description="Remote providers set up on this server (names only)")
    character_adapter: bool = Field(description="A local IP-Adapter is set up for character pictures")
    presets: list[OfferOut]
    styles: list[OfferOut]
    loras: list[str] = Field(description="Registered LoRAs the caller may add to a request")
    missing: list[MissingOut]


@router.get("", response_model=CapabilitiesOut, summary="What this server can do for me, and why the rest is missing")
def capabilities(user: ReaderDep, services: ServicesDep, session: SessionDep) -> dict[str, Any]:
    answer = server_capabilities(
        services.settings,
        services.models.list_models(session, user),
        services.generation.presets(),
        load_styles(services.settings.styles_file),
        services.generation.defaults_for,
    )
    return asdict(answer)
