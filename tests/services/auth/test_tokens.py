"""Access tokens: a token is verified once, and still refused once it expires or was never valid."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest

from limner.services.auth import tokens as tokens_module
from limner.services.auth.tokens import TokenError, Tokens

SECRET = "a test secret that is long enough for HS256"


def test_a_token_used_again_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request carries the token; checking its signature each time cost a fifth of authentication."""
    tokens = Tokens(SECRET, timedelta(minutes=5))
    token = tokens.issue("user-1", "user")
    decoded: list[str] = []
    decode = jwt.decode

    def counted(*arguments: object, **options: object) -> object:
        decoded.append("decode")
        return decode(*arguments, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(tokens_module.jwt, "decode", counted)
    assert [tokens.subject(token) for _ in range(5)] == ["user-1"] * 5
    assert decoded == ["decode"]


def test_a_token_verified_before_is_refused_once_it_expires() -> None:
    tokens = Tokens(SECRET, timedelta(seconds=1))
    token = tokens.issue("user-1", "user")
    assert tokens.subject(token) == "user-1"
    time.sleep(1.2)
    with pytest.raises(TokenError, match="expired"):
        tokens.subject(token)


def test_a_forged_or_foreign_token_is_refused_every_time() -> None:
    tokens = Tokens(SECRET, timedelta(minutes=5))
    foreign = Tokens("another secret, also long enough for HS256", timedelta(minutes=5)).issue("user-1", "user")
    for _ in range(2):
        with pytest.raises(TokenError):
            tokens.subject(foreign)
        with pytest.raises(TokenError):
            tokens.subject("not a token")
