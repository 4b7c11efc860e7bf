"""The caller's account, API keys and webhook secret; admin user list and server settings."""

from __future__ import annotations

from fastapi import APIRouter, status

from limner.api.deps import AdminDep, PrincipalDep, ReaderDep, ServicesDep, SessionDep
from limner.api.responses import AUTHENTICATED, WITH_BODY, error_responses
from limner.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ServerSettingsIn,
    UserOut,
    WebhookSecretOut,
)
from limner.services.jobs.webhooks import SIGNATURE_HEADER, standard_secret

router = APIRouter(prefix="/v1", tags=["users"], responses=error_responses(AUTHENTICATED))


@router.get("/users/me", response_model=UserOut)
def me(user: ReaderDep) -> UserOut:
    return UserOut.of(user)


@router.get("/users/me/webhook-secret", response_model=WebhookSecretOut, summary="Secret that signs your webhooks")
def webhook_secret(principal: PrincipalDep) -> WebhookSecretOut:
    secret = principal.user.webhook_secret
    return WebhookSecretOut(secret=secret, header=SIGNATURE_HEADER, standard_secret=standard_secret(secret))


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED,
             responses=error_responses(WITH_BODY))  # fmt: skip
def create_key(
    body: ApiKeyCreate, principal: PrincipalDep, services: ServicesDep, session: SessionDep
) -> ApiKeyCreated:
    user = session.merge(principal.user)
    key, plain = services.users.create_key(session, user, body.name, body.scopes)
    return ApiKeyCreated(**ApiKeyOut.of(key).model_dump(), key=plain)


@router.get("/api-keys", response_model=list[ApiKeyOut])
def list_keys(principal: PrincipalDep, services: ServicesDep, session: SessionDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(key) for key in services.users.keys(session, principal.user)]


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut, summary="Revoke a key", responses=error_responses(404))
def revoke_key(key_id: str, principal: PrincipalDep, services: ServicesDep, session: SessionDep) -> ApiKeyOut:
    return ApiKeyOut.of(services.users.revoke_key(session, principal.user, key_id))


@router.get("/admin/users", response_model=list[UserOut], tags=["admin"])
def list_users(_: AdminDep, services: ServicesDep, session: SessionDep) -> list[UserOut]:
    return [UserOut.of(user) for user in services.users.all(session)]


@router.get("/admin/settings", response_model=ServerSettingsIn, tags=["admin"])
def get_settings(_: AdminDep, services: ServicesDep, session: SessionDep) -> ServerSettingsIn:
    return ServerSettingsIn(
        registration_open=services.users.registration_open(session, services.settings.registration_open)
    )


@router.put("/admin/settings", response_model=ServerSettingsIn, tags=["admin"], responses=error_responses(WITH_BODY))
def put_settings(body: ServerSettingsIn, _: AdminDep, services: ServicesDep, session: SessionDep) -> ServerSettingsIn:
    services.users.set_registration_open(session, body.registration_open)
    return body
