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
from limner.api.errors import VALIDATION_STATUS, install_error_handlers
from limner.api.metrics import metrics_registry
from limner.api.responses import error_responses
from limner.api.routes import (
    auth,
    batches,
    capabilities,
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
from limner.config import Settings
from limner.services.container import Services, build_services

ROUTERS = (
    health.router,
    auth.router,
    users.router,
    jobs.router,
    openai_images.router,
    images.router,
    images.signed_router,
    characters.router,
    batches.router,
    models.router,
    trainings.router,
    prompts.router,
    capabilities.router,
)
DESCRIPTION = (
    "Self-hosted image generation. Authenticate with `POST /v1/auth/token` (OAuth2 password flow) "
    "or an API key as `Authorization: Bearer lmn_...` (or `X-API-Key: lmn_...`)."
)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.start()
        try:
            yield
        finally:
            services.stop()

    app = _routed_app(FastAPI(title="limner", version=__version__, description=DESCRIPTION, lifespan=lifespan))
    app.state.services = services
    app.state.metrics_registry = metrics_registry(services)
    install_error_handlers(app)
    app.add_middleware(NoSniffMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, without services, a database or settings (for tools and contract tests)."""
    return _routed_app(FastAPI(title="limner", version=__version__, description=DESCRIPTION)).openapi()


def _routed_app(app: FastAPI) -> FastAPI:
    for router in ROUTERS:
        app.include_router(router)
    _openapi_contract(app)
    return app


def _openapi_contract(app: FastAPI) -> None:
    """Make the OpenAPI document say what the app does: validation errors are 400s with the envelope.

    FastAPI documents a 422 ``HTTPValidationError`` on every operation with parameters; limner
    answers those errors with 400 and the error envelope (see ``api/errors.py``), so each 422 entry
    becomes a 400 entry, and the unused FastAPI schemas go.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        invalid = error_responses(VALIDATION_STATUS)[VALIDATION_STATUS]
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None and str(VALIDATION_STATUS) not in responses:
                    responses[str(VALIDATION_STATUS)] = {
                        "description": invalid["description"],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
                    }
        components = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
