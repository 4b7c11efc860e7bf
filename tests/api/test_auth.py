"""Authentication and authorization: every route needs credentials, scopes hold, logins throttle."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from limner.api.app import create_app
from limner.services.container import InsecureSettingsError, build_services, jwt_secret
from tests.api.conftest import PASSWORD, Api, service_settings

PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/auth/token", "/v1/auth/register", "/docs", "/docs/oauth2-redirect",
          "/redoc", "/openapi.json", "/v1/images/{image_id}/signed"}  # fmt: skip


def test_every_route_without_a_token_is_401(api: Api) -> None:
    checked = 0
    for path, methods in api.routes:
        if path in PUBLIC or not methods:
            continue
        url = path.replace("{job_id}", "x").replace("{image_id}", "x").replace("{key_id}", "x")
        for method in methods - {"HEAD", "OPTIONS"}:
            response = api.client.request(method, url)
            assert response.status_code == 401, (method, url, response.status_code)
            assert response.json()["error"]["type"] == "authentication_error"
            assert response.headers["WWW-Authenticate"] == "Bearer"
            checked += 1
    assert checked >= 15


def test_bad_tokens_are_401(api: Api) -> None:
    for value in ("Bearer nope", "Bearer lmn_forged", "Basic abc", "Bearer "):
        assert api.client.get("/v1/jobs", headers={"Authorization": value}).status_code == 401


def test_a_job_post_with_a_bad_credential_is_401_and_stores_nothing(api: Api) -> None:
    """The job route looks its credential up in the thread that stores the job: a refusal there stores nothing.
    A JWT that fails its signature is refused before the body is read (a bad body is 401, not 422)."""
    import jwt

    forged = jwt.encode({"sub": "x", "iss": "limner", "exp": 4102444800}, "wrong-secret-" * 4, algorithm="HS256")
    before = api.client.get("/v1/jobs", headers=api.as_user("alice")).json()["total"]  # an admin: every job
    for value in (f"Bearer {forged}", "Bearer lmn_forged", "Bearer nope"):
        response = api.client.post("/v1/jobs", json={"prompt": "x"}, headers={"Authorization": value})
        assert response.status_code == 401, (value, response.text)
    bad_body = api.client.post("/v1/jobs", json={"steps": "many"}, headers={"Authorization": f"Bearer {forged}"})
    assert bad_body.status_code == 401
    assert api.client.get("/v1/jobs", headers=api.as_user("alice")).json()["total"] == before


def test_forged_jwt_is_rejected(api: Api) -> None:
    import jwt

    forged = jwt.encode({"sub": "x", "iss": "limner", "exp": 4102444800}, "wrong-secret-" * 4, algorithm="HS256")
    unsigned = jwt.encode({"sub": "x", "iss": "limner", "exp": 4102444800}, key=None, algorithm="none")  # type: ignore[arg-type]
    for token in (forged, unsigned):
        assert api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_api_keys_are_shown_once_scoped_and_revocable(api: Api) -> None:
    headers = api.as_user("bob")
    created = api.client.post("/v1/api-keys", json={"name": "reader", "scopes": ["read"]}, headers=headers).json()
    key = created["key"]
    assert key.startswith("lmn_")
    listed = api.client.get("/v1/api-keys", headers=headers).json()
    assert all("key" not in item for item in listed)
    as_key = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/v1/jobs", headers=as_key).status_code == 200
    assert api.client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 200
    denied = api.client.post("/v1/jobs", json={"prompt": "x"}, headers=as_key)
    assert denied.status_code == 403
    assert "generate" in denied.json()["error"]["message"]
    assert api.client.delete(f"/v1/api-keys/{created['id']}", headers=headers).status_code == 200
    assert api.client.get("/v1/jobs", headers=as_key).status_code == 401


def test_user_cannot_mint_admin_keys_or_use_admin_routes(api: Api) -> None:
    headers = api.as_user("bob")
    response = api.client.post("/v1/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=headers)
    assert response.status_code == 403
    assert api.client.get("/v1/admin/users", headers=headers).status_code == 403
    assert api.client.get("/v1/admin/users", headers=api.as_user("alice")).status_code == 200


def test_registration_is_off_until_an_admin_opens_it(api: Api) -> None:
    body = {"username": "dave", "password": PASSWORD}
    assert api.client.post("/v1/auth/register", json=body).status_code == 403
    admin = api.as_user("alice")
    assert api.client.put("/v1/admin/settings", json={"registration_open": True}, headers=admin).status_code == 200
    created = api.client.post("/v1/auth/register", json=body)
    assert created.status_code == 201
    assert created.json()["role"] == "user"
    assert api.client.post("/v1/auth/register", json=body).status_code == 409
    sneaky = api.client.post("/v1/auth/register", json={**body, "username": "eve", "role": "admin"})
    assert sneaky.status_code == 400
    api.client.put("/v1/admin/settings", json={"registration_open": False}, headers=admin)
    assert api.client.post("/v1/auth/register", json={**body, "username": "frank"}).status_code == 403


def test_login_throttling(api: Api) -> None:
    for _ in range(5):
        response = api.client.post("/v1/auth/token", data={"username": "carol", "password": "wrong password"})
        assert response.status_code == 401
    blocked = api.client.post("/v1/auth/token", data={"username": "carol", "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0


def test_one_address_has_a_failed_login_budget_over_all_usernames(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """One password tried against many usernames (password spraying) is slowed like one account."""
    settings = service_settings(
        tmp_path,
        tiny_models["txt2img"],
        workers=0,
        login_max_failures_per_ip=3,
        admin_username="root",
        admin_password=PASSWORD,
    )
    with TestClient(create_app(settings, build_services(settings))) as client:
        for name in ("ann", "ben", "cat"):
            response = client.post("/v1/auth/token", data={"username": name, "password": "Summer2024!"})
            assert response.status_code == 401
        sprayed = client.post("/v1/auth/token", data={"username": "dan", "password": "Summer2024!"})
        assert sprayed.status_code == 429
        assert sprayed.json()["error"]["type"] == "rate_limit_error"
        assert int(sprayed.headers["Retry-After"]) > 0
        assert client.post("/v1/auth/token", data={"username": "root", "password": PASSWORD}).status_code == 429


def test_a_success_does_not_refill_the_address_budget(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    settings = service_settings(
        tmp_path,
        tiny_models["txt2img"],
        workers=0,
        login_max_failures_per_ip=2,
        admin_username="root",
        admin_password=PASSWORD,
    )
    with TestClient(create_app(settings, build_services(settings))) as client:
        assert client.post("/v1/auth/token", data={"username": "x", "password": "wrong one"}).status_code == 401
        assert client.post("/v1/auth/token", data={"username": "root", "password": PASSWORD}).status_code == 200
        assert client.post("/v1/auth/token", data={"username": "y", "password": "wrong one"}).status_code == 401
        assert client.post("/v1/auth/token", data={"username": "z", "password": "wrong one"}).status_code == 429


def test_webhook_secret_is_per_user(api: Api) -> None:
    bob = api.client.get("/v1/users/me/webhook-secret", headers=api.as_user("bob")).json()
    alice = api.client.get("/v1/users/me/webhook-secret", headers=api.as_user("alice")).json()
    assert bob["secret"] != alice["secret"]
    assert len(bob["secret"]) >= 32


def test_production_refuses_weak_or_missing_secret(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(InsecureSettingsError, match="LIMNER_JWT_SECRET"):
        jwt_secret(service_settings(tmp_path, tiny_models["txt2img"], env="production"))
    with pytest.raises(InsecureSettingsError, match="too weak"):
        jwt_secret(service_settings(tmp_path, tiny_models["txt2img"], jwt_secret="changeme"))
    strong = "k" * 20 + "0123456789abcdefghij"
    assert jwt_secret(service_settings(tmp_path, tiny_models["txt2img"], env="production", jwt_secret=strong)) == strong


def test_development_secret_is_generated_once_and_kept(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    settings = service_settings(tmp_path, tiny_models["txt2img"])
    first = jwt_secret(settings)
    assert len(first) >= 48
    assert jwt_secret(settings) == first
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_bootstrap_admin_and_job_rate_limit(
    tmp_path: Path, tiny_models: dict[str, Path], shared_engine: object
) -> None:
    settings = service_settings(tmp_path, tiny_models["txt2img"], admin_username="root", admin_password=PASSWORD,
                                jobs_per_minute=2, workers=0)  # fmt: skip
    services = build_services(settings, engine=shared_engine)  # type: ignore[arg-type]
    with TestClient(create_app(settings, services)) as client:
        local = Api(client)
        headers = local.login("root")
        codes = [client.post("/v1/jobs", json={"prompt": "x"}, headers=headers).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
