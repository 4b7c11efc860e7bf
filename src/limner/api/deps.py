"""Request dependencies: the services, a DB session, and the authenticated principal.

``CurrentUser`` accepts a JWT from ``/v1/auth/token`` or an API key, both as
``Authorization: Bearer ...`` (what the official ``openai`` client sends) or an API key as
``X-API-Key``. Scopes: JWT sessions get every scope their role allows; API keys their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer
from sqlalchemy.orm import Session

from limner.core.errors import AuthenticationError, PermissionDeniedError
from limner.db.base import utcnow
from limner.db.models import User
from limner.services.auth.api_keys import Scope, looks_like_key
from limner.services.auth.tokens import TokenError
from limner.services.container import Services


# The cheap dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its thread
# pool, a hop to another thread and back on every request; only those that touch the database need one.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[Session]:
    """A session made on the event loop (it connects only when first used, in a route's thread).

    Closed in the thread pool while it holds a transaction (closing hands its connection back, which
    may talk to the database); one that holds none (used by authentication only, which ends its read)
    is closed here, without a hop to another thread.
    """
    session = services.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    user: User
    scopes: frozenset[str]

    def require(self, scope: Scope) -> User:
        """The principal's user, if this credential has ``scope``; else 403."""
        if scope.value not in self.scopes:
            raise PermissionDeniedError(f"this credential lacks the {scope.value!r} scope")
        return self.user


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
    token_user = services.users.by_id(session, _token_subject(services, token))
    if token_user is None:
        raise AuthenticationError("the account of this token no longer exists or is disabled")
    scopes = {Scope.READ.value, Scope.GENERATE.value} | ({Scope.ADMIN.value} if token_user.is_admin else set())
    return Principal(token_user, frozenset(scopes))


def _token_subject(services: Services, token: str) -> str:
    """The user id of a JWT whose signature and expiry hold, or 401 (a verified token is not decoded again)."""
    try:
        return services.tokens.subject(token)
    except TokenError as exc:
        raise AuthenticationError(f"invalid or expired token ({exc}); log in again at /v1/auth/token") from exc


# Declared security schemes, so the OpenAPI document says how to authenticate (generated clients
# and fuzzers then send credentials) instead of listing optional header parameters. None of them
# raises by itself (auto_error=False): get_principal answers one 401 with the error envelope.
# OAuth2 password and HTTP bearer both read "Authorization: Bearer ..."; the first is for JWTs
# from the token URL, the second documents that API keys travel the same way.
TOKEN_URL = "/v1/auth/token"
API_KEY_HEADER = "X-API-Key"
oauth2_password = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL, auto_error=False, scheme_name="OAuth2Password", description="A JWT from the token URL."
)
http_bearer = HTTPBearer(
    auto_error=False, scheme_name="BearerAuth", description="A JWT or an API key (lmn_...) as a bearer token."
)
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, scheme_name="ApiKeyAuth", description="An API key (lmn_...)."
)


def credential(bearer: str | None, api_key: str | None) -> str:
    """The API key header wins over the Authorization header, as before the schemes were declared."""
    for value in (api_key, bearer):
        if value and value.strip():
            return value.strip()
    raise AuthenticationError("missing credentials: send 'Authorization: Bearer <token or API key>'")


async def get_credential(
    services: ServicesDep,
    oauth_token: Annotated[str | None, Security(oauth2_password)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(http_bearer)],
    api_key: Annotated[str | None, Security(api_key_header)],
) -> str:
    """The request's credential, checked as far as it goes without the database: a missing one, or a JWT
    whose signature or expiry fails, is a 401 here, on the event loop. Whose it is (the user's row, an
    API key's hash) is looked up by :func:`authenticate`, in the thread of the route's own database work.
    """
    token = credential(bearer.credentials if bearer is not None else oauth_token, api_key)
    if not looks_like_key(token):
        _token_subject(services, token)
    return token


CredentialDep = Annotated[str, Depends(get_credential)]


def get_principal(services: ServicesDep, session: SessionDep, token: CredentialDep) -> Principal:
    principal = authenticate(services, session, token)
    # End the read: the connection goes back to the pool in this thread, the user stays loaded, and a
    # route that uses the session again begins a new transaction.
    session.commit()
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def reader(principal: PrincipalDep) -> User:
    return principal.require(Scope.READ)


async def generator(principal: PrincipalDep) -> User:
    return principal.require(Scope.GENERATE)


async def admin(principal: PrincipalDep) -> User:
    if not principal.user.is_admin:
        raise PermissionDeniedError("admins only")
    return principal.require(Scope.ADMIN)


ReaderDep = Annotated[User, Depends(reader)]
GeneratorDep = Annotated[User, Depends(generator)]
AdminDep = Annotated[User, Depends(admin)]
