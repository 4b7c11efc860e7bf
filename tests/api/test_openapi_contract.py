"""The OpenAPI document is a contract, checked with Schemathesis against the app in-process.

Every operation gets generated requests (valid and invalid, boundary values first) with an admin
API key, and every answer must keep the contract: no 5xx, only documented statuses, and bodies
that match the documented schemas (the error envelope included). The budget is fixed in
``schemathesis.toml`` beside this file: deterministic, a set number of examples per operation.

The schema is built at import from :func:`openapi_document` (the same routes, no services), so
pytest collects one test per operation; the app under test, with its worker and the tiny model,
is attached by a fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from starlette.types import Receive, Scope, Send

from limner.api.app import create_app, openapi_document
from limner.db.models import Role
from limner.engines.local.engine import LocalEngine
from limner.services.container import build_services
from tests.api.conftest import PASSWORD, service_settings

CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# GET /v1/jobs/{job_id}/events streams until its job ends, and a job the fuzzer's own requests
# keep queued behind others can outlast any per-case budget, so it is left out. (The WebSocket is
# not an OpenAPI operation.) The sync waits stay in (OpenAI routes, Accept: image/png): the
# in-process worker finishes their jobs (at most 4 steps at 256x256 here) on the tiny model quickly.
EXCLUDED_PATHS = ["/v1/jobs/{job_id}/events"]


class LateApp:
    """The ASGI app under test, attached by a fixture: pytest collects operations before fixtures run."""

    def __init__(self) -> None:
        self.target: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None, "the admin_key fixture attaches the app"
        await self.target(scope, receive, send)


APP = LateApp()
schema = schemathesis.openapi.from_dict(openapi_document(), config=SchemathesisConfig.from_path(CONFIG)).exclude(
    path=EXCLUDED_PATHS
)
schema.app = APP


@pytest.fixture(scope="module")
def admin_key(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path], shared_engine: LocalEngine
) -> Iterator[str]:
    """Attach the app (worker running, small limits) to the schema; yield an admin API key (every scope)."""
    settings = service_settings(
        tmp_path_factory.mktemp("contract"), tiny_models["txt2img"], max_steps=4, max_pixels=256 * 256,
        max_images_per_request=2, sync_wait_seconds=30,
    )  # fmt: skip
    services = build_services(settings, engine=shared_engine)
    with services.sessions() as session:
        root = services.users.create(session, "root", PASSWORD, Role.ADMIN)
        _, key = services.users.create_key(session, root, "contract", ["read", "generate", "admin"])
    APP.target = create_app(settings, services)  # Schemathesis starts its lifespan (and worker) on the first call
    try:
        yield key
    finally:
        shutdown_lifespans()


@schema.parametrize()
def test_every_operation_keeps_the_contract(case: schemathesis.Case, admin_key: str) -> None:
    # Both headers: the document declares both schemes, and Schemathesis would otherwise fill the other.
    headers = {"Authorization": f"Bearer {admin_key}", "X-API-Key": admin_key}
    case.call_and_validate(headers=headers, checks=CHECKS)
