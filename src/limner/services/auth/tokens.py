"""Short-lived JWT access tokens (HS256, algorithm pinned on decode, issuer and expiry checked).

Why verified tokens are remembered: every request carries its token, and checking the signature
and claims again each time was a fifth of authentication. A token string that verified once is
the same token the next time; only its expiry changes with time, and that is checked on every use.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt

from limner.services.auth.signed_urls import ImageLinks, derive_key

ALGORITHM = "HS256"
ISSUER = "limner"
REMEMBERED_TOKENS = 1024


class TokenError(Exception):
    """The token is missing, expired, forged or malformed."""


class Tokens:
    def __init__(self, secret: str, expiry: timedelta) -> None:
        self._secret = secret
        self.expiry = expiry
        self._verified = lru_cache(maxsize=REMEMBERED_TOKENS)(self._verify)  # raises are not remembered

    def issue(self, user_id: str, role: str) -> str:
        now = datetime.now(UTC)
        claims = {"sub": user_id, "role": role, "iss": ISSUER, "iat": now, "exp": now + self.expiry}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def subject(self, token: str) -> str:
        subject, expires_at = self._verified(token)
        if time.time() >= expires_at:
            raise TokenError("Signature has expired")
        return subject

    def _verify(self, token: str) -> tuple[str, float]:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub", "iss"]}
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        return str(claims["sub"]), float(claims["exp"])

    def image_links(self, lifetime_seconds: int) -> ImageLinks:
        """Signed image links, keyed from this server's secret (a key of their own, derived from it)."""
        return ImageLinks(derive_key(self._secret), lifetime_seconds)
