"""The FastAPI application factory: ``create_app(settings)`` wires services and routes.

Why a factory: tests and ``limner serve`` build independent apps from settings; nothing is
created at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
    trainings,
    users,
)
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
    routers = (health.router, auth.router, users.router, jobs.router, openai_images.router, images.router,
               characters.router, batches.router, models.router, trainings.router)  # fmt: skip
    for router in routers:
        app.include_router(router)

    app.add_middleware(NoSniffMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    return app
