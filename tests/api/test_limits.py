"""A full queue answers 503 with Retry-After, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from limner.api.app import create_app
from limner.engines.local.engine import LocalEngine
from limner.services.container import build_services
from tests.api.conftest import PASSWORD, Api, service_settings


def test_full_queue_is_503(tmp_path: Path, tiny_models: dict[str, Path], shared_engine: LocalEngine) -> None:
    settings = service_settings(tmp_path, tiny_models["txt2img"], max_queue_size=1, workers=0,
                                admin_username="root", admin_password=PASSWORD)  # fmt: skip
    with TestClient(create_app(settings, build_services(settings, engine=shared_engine))) as client:
        headers = Api(client).login("root")
        assert client.post("/v1/jobs", json={"prompt": "x"}, headers=headers).status_code == 202
        full = client.post("/v1/jobs", json={"prompt": "y"}, headers=headers)
        assert full.status_code == 503
        assert full.json()["error"]["code"] == "queue_full"
        assert int(full.headers["Retry-After"]) > 0
        assert client.get("/v1/jobs", headers=headers).json()["total"] == 1
        ready = client.get("/readyz").json()
        assert "worker" not in ready["checks"]


def test_over_the_rate_limit_with_an_idempotency_key_stores_nothing_and_a_replay_does_not_count(
    tmp_path: Path, tiny_models: dict[str, Path], shared_engine: LocalEngine
) -> None:
    settings = service_settings(tmp_path, tiny_models["txt2img"], jobs_per_minute=1, workers=0,
                                admin_username="root", admin_password=PASSWORD)  # fmt: skip
    with TestClient(create_app(settings, build_services(settings, engine=shared_engine))) as client:
        headers = Api(client).login("root")
        first = client.post("/v1/jobs", json={"prompt": "x"}, headers={**headers, "Idempotency-Key": "a"})
        assert first.status_code == 202
        replay = client.post("/v1/jobs", json={"prompt": "x"}, headers={**headers, "Idempotency-Key": "a"})
        assert replay.status_code == 202, replay.text  # a replay is answered even at the limit
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["id"] == first.json()["id"]
        over = client.post("/v1/jobs", json={"prompt": "y"}, headers={**headers, "Idempotency-Key": "b"})
        assert over.status_code == 429
        assert client.get("/v1/jobs", headers=headers).json()["total"] == 1  # the 429 left no job behind
        again = client.post("/v1/jobs", json={"prompt": "y"}, headers={**headers, "Idempotency-Key": "b"})
        assert again.status_code == 429  # not "replayed": nothing was stored under that key
