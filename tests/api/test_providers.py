"""A remote provider this server has no key for is the caller's problem to route around (a 400), and its
answer names nothing of the server (no environment variable)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from limner.api.app import create_app
from limner.services.container import build_services
from tests.api.conftest import PASSWORD, Api, service_settings

UNCONFIGURED = {"openai_api_key": None, "replicate_api_token": None, "stability_api_key": None}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/jobs", {"prompt": "x", "model": "openai:dall-e-3"}),
        ("/v1/jobs", {"prompt": "x", "model": "stability:core"}),
        ("/v1/images/generations", {"prompt": "x", "model": "replicate:a/b"}),
        ("/v1/batches", {"theme": "x", "count": 1, "offline": True, "provider": "openai"}),
    ],
)
def test_an_unconfigured_provider_is_a_400_that_names_no_server_setting(
    tmp_path: Path, tiny_models: dict[str, Path], path: str, body: dict[str, object]
) -> None:
    settings = service_settings(tmp_path, tiny_models["txt2img"], workers=0, admin_username="root",
                                admin_password=PASSWORD, **UNCONFIGURED)  # fmt: skip
    with TestClient(create_app(settings, build_services(settings))) as client:
        headers = Api(client).login("root")
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "provider_not_configured"
        for server_detail in ("_KEY", "TOKEN", ".env"):
            assert server_detail not in error["message"]
        assert client.get("/v1/jobs", headers=headers).json()["total"] == 0
