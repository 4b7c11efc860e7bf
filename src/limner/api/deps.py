"""Request dependencies: the services, a DB session, and the authenticated principal.

``CurrentUser`` accepts a JWT from ``/v1/auth/token`` or an API key, both as
``Authorization: Bearer ...`` (what the official ``openai`` client sends) or an API key as
``X-API-Key``. Scopes: JWT sessions get every scope their role allows; API keys their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from limner.core.errors import AuthenticationError, PermissionDeniedError
from limner.db.base import utcnow
from limner.db.models import User
from limner.services.auth.api_keys import Scope, looks_like_key
from limner.services.auth.tokens import TokenError
from limner.services.container import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    user: User
    scopes: frozenset[str]

    def require(self, scope: Scope) -> None:
        if scope.value not in self.scopes:
            raise PermissionDeniedError(f"this credential lacks the {scope.value!r} scope")


def authenticate(services: Services, session: Session, token: str) -> Principal:
    """Resolve a bearer token or API key into a principal, or raise 401."""
    if looks_like_key(token):
        found = services.users.user_for_key(session, token, utcnow())
        if found is None:
            raise AuthenticationError("invalid or revoked API key")
        user, key = found
        scopes = set(key.scopes)
        if not user.is_admin:
            scopes.discard(Scope.ADMIN.value)
        return Principal(user, frozenset(scopes))
    try:
        user_id = services.tokens.subject(token)
    except TokenError as exc:
        raise AuthenticationError(f"invalid or expired token ({exc}); log in again at /v1/auth/token") from exc
    token_user = services.users.by_id(session, user_id)
    if token_user is None:
        raise AuthenticationError("the account of this token no longer exists or is disabled")
    scopes = {Scope.READ.value, Scope.GENERATE.value} | ({Scope.ADMIN.value} if token_user.is_admin else set())
    return Principal(token_user, frozenset(scopes))


def bearer_token(authorization: str | None, api_key: str | None) -> str:
    if api_key:
        return api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    raise AuthenticationError("missing credentials: send 'Authorization: Bearer <token or API key>'")


def get_principal(
    services: ServicesDep,
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    return authenticate(services, session, bearer_token(authorization, x_api_key))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def reader(principal: PrincipalDep) -> User:
    principal.require(Scope.READ)
    return principal.user


def generator(principal: PrincipalDep) -> User:
    principal.require(Scope.GENERATE)
    return principal.user


def admin(principal: PrincipalDep) -> User:
    if not principal.user.is_admin:
        raise PermissionDeniedError("admins only")
    principal.require(Scope.ADMIN)
    return principal.user


ReaderDep = Annotated[User, Depends(reader)]
GeneratorDep = Annotated[User, Depends(generator)]
AdminDep = Annotated[User, Depends(admin)]
