"""The FastAPI application factory: ``create_app(settings)`` wires services and routes.

Why a factory: tests and ``limner serve`` build independent apps from settings; nothing is
created at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from limner import __version__
from limner.api.body_limit import BodyLimitMiddleware, NoSniffMiddleware
from limner.api.errors import install_error_handlers
from limner.api.metrics import metrics_registry
from limner.api.routes import (
    auth,
    batches,
    characters,
    health,
    images,
    jobs,
    models,
    openai_images,
    prompts,
    trainings,
    users,
)
from limner.api.schemas import JobCreate
from limner.config import Settings
from limner.services.container import Services, build_services


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.start()
        try:
            yield
        finally:
            services.stop()

    app = FastAPI(
        title="limner",
        version=__version__,
        description="Self-hosted image generation. Authenticate with `POST /v1/auth/token` (OAuth2 password flow) "
        "or an API key as `Authorization: Bearer lmn_...`.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.metrics_registry = metrics_registry(services)
    install_error_handlers(app)
    routers = (
        health.router,
        auth.router,
        users.router,
        jobs.router,
        openai_images.router,
        images.router,
        characters.router,
        batches.router,
        models.router,
        trainings.router,
        prompts.router,
    )
    for router in routers:
        app.include_router(router)

    _document_job_body(app)
    app.add_middleware(NoSniffMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    return app


def _document_job_body(app: FastAPI) -> None:
    """``POST /v1/jobs`` reads JSON or multipart by hand; put its JSON schema into the OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        body = JobCreate.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in body.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault("JobCreate", body)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
