"""A live app per test module on the tiny model: SQLite in a temp folder, in-process worker."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from limner.api.app import create_app
from limner.config import Settings
from limner.db.models import Role
from limner.engines.local.engine import LocalEngine
from limner.services.container import build_services

PASSWORD = "correct horse battery"


def service_settings(root: Path, tiny_model: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "default_model": str(tiny_model),
        "data_dir": root,
        "device": "cpu",
        "workers": 1,
        "jobs_per_minute": 1000,
        "max_request_bytes": 2 * 1024 * 1024,
        "max_input_image_bytes": 1024 * 1024,
        "sync_wait_seconds": 60,
        "max_steps": 1000,
        "webhook_allow_private": True,  # the webhook tests' receivers listen on loopback
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


class Api:
    """A test client plus the users it made and helpers to act as them."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}
        self.routes: list[tuple[str, set[str]]] = []

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        response = self.client.post("/v1/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def as_user(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            self.tokens[username] = self.login(username)["Authorization"]
        return {"Authorization": self.tokens[username]}

    def wait(self, job_id: str, user: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}", headers=self.as_user(user)).json()
            if job["status"] in ("succeeded", "failed", "canceled"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish")


def png_bytes(size: tuple[int, int] = (64, 64), color: str = "orange", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shared_engine(tiny_models: dict[str, Path]) -> LocalEngine:
    return LocalEngine(Settings(default_model=str(tiny_models["txt2img"]), device="cpu", max_steps=1000,
                                _env_file=None))  # type: ignore[call-arg]  # fmt: skip


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Iterator[Api]:
    """The app as ``limner serve`` builds it (engine with the model registry's names)."""
    settings = service_settings(tmp_path_factory.mktemp("service"), tiny_models["txt2img"])
    services = build_services(settings)
    with services.sessions() as session:
        services.users.create(session, "alice", PASSWORD, Role.ADMIN)
        services.users.create(session, "bob", PASSWORD)
        services.users.create(session, "carol", PASSWORD)
    app = create_app(settings, services)
    with TestClient(app) as client:
        api = Api(client)
        api.routes = [(path, {method.upper() for method in ops}) for path, ops in app.openapi()["paths"].items()]
        yield api
