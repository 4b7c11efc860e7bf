"""Short-lived JWT access tokens (HS256, algorithm pinned on decode, issuer and expiry checked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from limner.services.auth.signed_urls import ImageLinks, derive_key

ALGORITHM = "HS256"
ISSUER = "limner"


class TokenError(Exception):
    """The token is missing, expired, forged or malformed."""


class Tokens:
    def __init__(self, secret: str, expiry: timedelta) -> None:
        self._secret = secret
        self.expiry = expiry

    def issue(self, user_id: str, role: str) -> str:
        now = datetime.now(UTC)
        claims = {"sub": user_id, "role": role, "iss": ISSUER, "iat": now, "exp": now + self.expiry}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def subject(self, token: str) -> str:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub", "iss"]}
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        return str(claims["sub"])

    def image_links(self, lifetime_seconds: int) -> ImageLinks:
        """Signed image links, keyed from this server's secret (a key of their own, derived from it)."""
        return ImageLinks(derive_key(self._secret), lifetime_seconds)
