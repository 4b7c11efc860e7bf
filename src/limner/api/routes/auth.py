"""Log in (OAuth2 password flow -> JWT) and register (when an admin has opened registration)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from limner.api.deps import ServicesDep, SessionDep
from limner.api.responses import WITH_BODY, error_responses
from limner.api.schemas import Registration, TokenOut, UserOut
from limner.core.errors import AuthenticationError, PermissionDeniedError, RateLimitedError
from limner.services.auth.throttle import LoginThrottle

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenOut, summary="Exchange username and password for a JWT",
             responses=error_responses(WITH_BODY, 401, 429))  # fmt: skip
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], services: ServicesDep, session: SessionDep, request: Request
) -> TokenOut:
    client = request.client.host if request.client else "unknown"
    throttle = LoginThrottle(services.login_failures, services.settings.login_max_failures_per_ip)
    wait = throttle.blocked(form.username, client)
    if wait:
        raise RateLimitedError(f"too many failed logins; try again in {wait:.0f}s", retry_after=wait)
    user = services.users.authenticate(session, form.username, form.password)
    if user is None:
        throttle.failed(form.username, client)
        raise AuthenticationError("wrong username or password")
    throttle.succeeded(form.username, client)
    expires = int(services.tokens.expiry.total_seconds())
    return TokenOut(access_token=services.tokens.issue(user.id, user.role), expires_in=expires)


@router.post("/register", response_model=UserOut, status_code=status.HTTP_201_CREATED, summary="Create an account",
             responses=error_responses(WITH_BODY, 403, 409))  # fmt: skip
def register(body: Registration, services: ServicesDep, session: SessionDep) -> UserOut:
    if not services.users.registration_open(session, services.settings.registration_open):
        raise PermissionDeniedError("registration is closed on this server; ask an admin for an account")
    return UserOut.of(services.users.create(session, body.username, body.password))
