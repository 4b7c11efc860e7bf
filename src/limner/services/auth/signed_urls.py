"""Signed, expiring image links: what ``response_format=url`` hands out.

Why: OpenAI clients download the ``url`` of a generated image directly, without the API key, so
the link itself must carry the permission. The signature is HMAC-SHA256 over the image id and
the expiry time, with a key derived from the server's JWT secret (so rotating that secret
revokes every link, and no second secret needs storing). A link grants one image, until then.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

_PURPOSE = b"limner signed image url v1"


def derive_key(secret: str, purpose: bytes = _PURPOSE) -> bytes:
    """A key for one purpose from the server secret: a leaked link key forges no JWT, and back."""
    return hmac.new(secret.encode(), purpose, hashlib.sha256).digest()


class ImageLinks:
    """Signs and checks ``(image id, expiry)`` pairs."""

    def __init__(self, key: bytes, lifetime_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock

    def signature(self, image_id: str, expires: int) -> str:
        return hmac.new(self._key, f"{image_id}.{expires}".encode(), hashlib.sha256).hexdigest()

    def issue(self, image_id: str) -> tuple[int, str]:
        """An expiry (unix seconds) ``lifetime_seconds`` from now and its signature."""
        expires = int(self._clock()) + self.lifetime_seconds
        return expires, self.signature(image_id, expires)

    def valid(self, image_id: str, expires: int, signature: str) -> bool:
        """True for an unexpired link this server signed (compared in constant time)."""
        if expires < self._clock():
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters (a forged link may carry any).
        return hmac.compare_digest(self.signature(image_id, expires).encode(), signature.encode())
