"""The model registry over HTTP: users see shared models and their own; owners share or delete
theirs; admins install, import and manage every model."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from limner.api.deps import AdminDep, GeneratorDep, ReaderDep, ServicesDep, SessionDep
from limner.api.responses import AUTHENTICATED, WITH_BODY, error_responses
from limner.db.models import ModelVisibility, RegisteredModel, User
from limner.services.container import Services

router = APIRouter(prefix="/v1/models", tags=["models"], responses=error_responses(AUTHENTICATED))


class ModelOut(BaseModel):
    """A registered model. Where its weights live on the server (``reference``, import source) is shown
    to admins only; a user sees whether the model is theirs and who else may use it."""

    name: str
    kind: str
    architecture: str
    base_model: str | None
    visibility: ModelVisibility
    mine: bool = Field(description="True when the caller owns (trained or registered) the model")
    reference: str | None = Field(default=None, description="Weights location; admins only")
    size_bytes: int
    details: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, model: RegisteredModel, viewer: User) -> ModelOut:
        details = dict(model.details)
        if not viewer.is_admin:
            details.pop("imported_from", None)
        return cls(name=model.name, kind=model.kind, architecture=model.architecture,
                   base_model=model.base_model if viewer.is_admin or not _is_path(model.base_model) else None,
                   visibility=ModelVisibility(model.visibility), mine=model.created_by == viewer.id,
                   reference=model.reference if viewer.is_admin else None, size_bytes=model.size_bytes,
                   details=details, created_at=model.created_at)  # fmt: skip


def _is_path(reference: str | None) -> bool:
    return reference is not None and (reference.startswith(("/", ".", "~")) or reference.endswith(".safetensors"))


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visibility: ModelVisibility = Field(description="private: you (and admins) only; shared: every user")


class ModelInstall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hub_id: Annotated[str, Field(min_length=3, max_length=200)]
    name: Annotated[str | None, Field(max_length=64)] = None


class ModelImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(min_length=1, max_length=1024, description="A path on the server")]
    name: Annotated[str, Field(max_length=64)]
    base_model: Annotated[str | None, Field(max_length=512)] = None


@router.get("", response_model=list[ModelOut], summary="Registered models: shared ones and my own")
def list_models(user: ReaderDep, services: ServicesDep, session: SessionDep) -> list[ModelOut]:
    return [ModelOut.of(model, user) for model in services.models.list_models(session, user)]


@router.get("/{name}", response_model=ModelOut, responses=error_responses(404))
def get_model(name: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> ModelOut:
    return ModelOut.of(services.models.get(session, name, user), user)


@router.patch("/{name}", response_model=ModelOut, summary="Share a model of mine with every user, or make it private",
              responses=error_responses(WITH_BODY, 404))  # fmt: skip
def update_model(name: str, body: ModelUpdate, user: GeneratorDep, services: ServicesDep,
                 session: SessionDep) -> ModelOut:  # fmt: skip
    return ModelOut.of(services.models.set_visibility(session, name, body.visibility, user), user)


def _install(services: Services, user: User, body: ModelInstall) -> ModelOut:
    with services.sessions() as session:
        return ModelOut.of(services.models.install(session, body.hub_id, body.name, created_by=user.id), user)


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
        return ModelOut.of(model, user)


@router.post("/import", response_model=ModelOut, status_code=status.HTTP_201_CREATED,
             summary="Import a diffusers folder or .safetensors file from the server's disk",
             responses=error_responses(WITH_BODY, 404, 409))  # fmt: skip
async def import_model(body: ModelImport, user: AdminDep, services: ServicesDep) -> ModelOut:
    return await run_in_threadpool(_import, services, user, body)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Delete a model: its owner or an admin", responses=error_responses(404))  # fmt: skip
def delete_model(name: str, user: GeneratorDep, services: ServicesDep, session: SessionDep) -> Response:
    services.models.remove(session, name, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
