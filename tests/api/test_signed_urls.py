"""Signed image links: absolute, expiring, bound to one image, usable without credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from limner.api.app import create_app
from limner.engines.local.engine import LocalEngine
from limner.services.auth.signed_urls import ImageLinks, derive_key
from limner.services.container import build_services
from tests.api.conftest import PASSWORD, Api, service_settings


def test_links_expire_and_bind_the_image_id() -> None:
    now = [1_000_000.0]
    links = ImageLinks(derive_key("server secret"), lifetime_seconds=3600, clock=lambda: now[0])
    expires, signature = links.issue("img1")
    assert expires == 1_000_000 + 3600
    assert links.valid("img1", expires, signature)
    assert not links.valid("img2", expires, signature)
    assert not links.valid("img1", expires + 1, signature)
    assert not links.valid("img1", expires, signature.upper())
    assert not links.valid("img1", expires, "é" + signature[1:])  # any text, not only hex, is refused
    now[0] = expires + 1
    assert not links.valid("img1", expires, signature)
    other_server = ImageLinks(derive_key("another secret"), lifetime_seconds=3600, clock=lambda: 0)
    assert not other_server.valid("img1", expires, signature)


@pytest.fixture(scope="module")
def public_api(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path], shared_engine: LocalEngine
) -> Iterator[Api]:
    settings = service_settings(tmp_path_factory.mktemp("signed"), tiny_models["txt2img"],
                                public_url="https://limner.example.com/", signed_url_seconds=600,
                                admin_username="root", admin_password=PASSWORD)  # fmt: skip
    app = create_app(settings, build_services(settings, engine=shared_engine))
    with TestClient(app) as client:
        yield Api(client)


def _generate_url(api: Api) -> str:
    body = {"prompt": "a boat", "size": "64x64", "response_format": "url"}
    response = api.client.post("/v1/images/generations", json=body, headers=api.as_user("root"))
    assert response.status_code == 200, response.text
    url: str = response.json()["data"][0]["url"]
    return url


def test_links_use_the_public_url_and_work_without_credentials(public_api: Api) -> None:
    url = _generate_url(public_api)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "https://limner.example.com"
    assert parts.path.endswith("/signed")
    query = parse_qs(parts.query)
    assert set(query) == {"expires", "signature"}
    local = f"{parts.path}?{parts.query}"
    fetched = public_api.client.get(local)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert "Authorization" not in fetched.request.headers


def test_a_tampered_or_expired_link_is_a_403_with_the_envelope(public_api: Api) -> None:
    parts = urlsplit(_generate_url(public_api))
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    image_id = parts.path.split("/")[-2]
    cases = [
        {**query, "expires": str(int(query["expires"]) + 1)},  # a longer life than was signed
        {**query, "expires": "1"},  # long expired
        {**query, "signature": "0" * 64},
    ]
    for params in cases:
        refused = public_api.client.get(parts.path, params=params)
        assert refused.status_code == 403, params
        assert refused.json()["error"]["type"] == "permission_error"
        assert "expired" in refused.json()["error"]["message"]
    other = public_api.client.get(f"/v1/images/{image_id[:-1]}x/signed", params=query)
    assert other.status_code == 403
    missing = public_api.client.get(parts.path)
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] in ("expires", "signature")
