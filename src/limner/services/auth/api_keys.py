"""Long-lived API keys: random, shown once, stored only as a SHA-256 hash.

Why SHA-256 and not Argon2: a key has 256 bits of entropy, so a fast hash is not brute-forceable,
and every API request must verify it quickly.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

KEY_PREFIX = "lmn_"


class Scope(StrEnum):
    READ = "read"  # list and fetch own jobs and images
    GENERATE = "generate"  # create and cancel jobs, upload images
    ADMIN = "admin"  # admin endpoints (only for admin users)


ALL_SCOPES = frozenset(Scope)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 6]
