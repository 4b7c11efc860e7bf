"""The model registry over HTTP: everyone lists; admins install, import and delete."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from limner.api.deps import AdminDep, ReaderDep, ServicesDep, SessionDep
from limner.api.responses import AUTHENTICATED, WITH_BODY, error_responses
from limner.db.models import RegisteredModel, User
from limner.services.container import Services

router = APIRouter(prefix="/v1/models", tags=["models"], responses=error_responses(AUTHENTICATED))


class ModelOut(BaseModel):
    name: str
    kind: str
    architecture: str
    base_model: str | None
    reference: str
    size_bytes: int
    details: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, model: RegisteredModel) -> ModelOut:
        return cls(name=model.name, kind=model.kind, architecture=model.architecture, base_model=model.base_model,
                   reference=model.reference, size_bytes=model.size_bytes, details=model.details,
                   created_at=model.created_at)  # fmt: skip


class ModelInstall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hub_id: Annotated[str, Field(min_length=3, max_length=200)]
    name: Annotated[str | None, Field(max_length=64)] = None


class ModelImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(min_length=1, max_length=1024, description="A path on the server")]
    name: Annotated[str, Field(max_length=64)]
    base_model: Annotated[str | None, Field(max_length=512)] = None


@router.get("", response_model=list[ModelOut], summary="Registered models")
def list_models(_: ReaderDep, services: ServicesDep, session: SessionDep) -> list[ModelOut]:
    return [ModelOut.of(model) for model in services.models.list_models(session)]


@router.get("/{name}", response_model=ModelOut, responses=error_responses(404))
def get_model(name: str, _: ReaderDep, services: ServicesDep, session: SessionDep) -> ModelOut:
    return ModelOut.of(services.models.get(session, name))


def _install(services: Services, user: User, body: ModelInstall) -> ModelOut:
    with services.sessions() as session:
        return ModelOut.of(services.models.install(session, body.hub_id, body.name, created_by=user.id))


@router.post(
    "/install",
    response_model=ModelOut,
    status_code=status.HTTP_201_CREATED,
    summary="Install from the hub",
    responses=error_responses(WITH_BODY, 409, 502),
)
async def install_model(body: ModelInstall, user: AdminDep, services: ServicesDep) -> ModelOut:
    return await run_in_threadpool(_install, services, user, body)


def _import(services: Services, user: User, body: ModelImport) -> ModelOut:
    with services.sessions() as session:
        model = services.models.import_path(session, Path(body.path), body.name, base_model=body.base_model,
                                            created_by=user.id)  # fmt: skip
        return ModelOut.of(model)


@router.post("/import", response_model=ModelOut, status_code=status.HTTP_201_CREATED,
             summary="Import a diffusers folder or .safetensors file from the server's disk",
             responses=error_responses(WITH_BODY, 404, 409))  # fmt: skip
async def import_model(body: ModelImport, user: AdminDep, services: ServicesDep) -> ModelOut:
    return await run_in_threadpool(_import, services, user, body)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses=error_responses(404))  # fmt: skip
def delete_model(name: str, _: AdminDep, services: ServicesDep, session: SessionDep) -> Response:
    services.models.remove(session, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
