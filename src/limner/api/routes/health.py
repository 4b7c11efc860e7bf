"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from limner import __version__
from limner.api.deps import ReaderDep, ServicesDep, SessionDep
from limner.api.responses import AUTHENTICATED, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="The database answers and the worker runs",
            responses={503: {"description": "Not ready: `checks` says which part is down"}})  # fmt: skip
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with services.db.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    if services.settings.workers:
        checks["worker"] = "ok" if services.worker.alive else "stopped"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/server", summary="Device, dtype, loaded models and queue depth of this server",
            responses=error_responses(AUTHENTICATED))  # fmt: skip
def server(_: ReaderDep, services: ServicesDep, session: SessionDep) -> dict[str, Any]:
    local = getattr(services.engine, "local", services.engine)
    placement = getattr(local, "placement", None)
    loaded = getattr(local, "loaded_models", None)
    return {
        "version": __version__,
        "device": placement.device.type if placement is not None else None,
        "dtype": str(placement.dtype).removeprefix("torch.") if placement is not None else None,
        "loaded_models": loaded() if callable(loaded) else [],
        "default_model": services.settings.default_model,
        "queue_depth": services.queue.queued_count(session),
        "workers": services.settings.workers,
    }
