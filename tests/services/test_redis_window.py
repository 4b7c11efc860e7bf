"""Rate limits shared by API processes: one Redis sorted set per key, the in-memory window's semantics."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from limner.config import Settings
from limner.services.auth.throttle import LoginThrottle, SlidingWindow
from limner.services.container import _window
from tests.services.conftest import require

REDIS_URL = os.environ.get("LIMNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def name() -> Iterator[str]:
    """A fresh window name on the loopback Redis (skips without it; fails under CI=true)."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
        reachable = True
    except redis.RedisError:
        reachable = False
    require("Redis", reachable, REDIS_URL)
    window = f"test-{uuid.uuid4().hex[:8]}"
    yield window
    for key in client.scan_iter(f"limner:window:{window}:*"):
        client.delete(key)


def test_two_api_processes_share_one_budget(name: str) -> None:
    from limner.services.jobs.redis_window import RedisSlidingWindow

    first, second = (RedisSlidingWindow(REDIS_URL, name, 3, 60.0) for _ in range(2))
    assert [first.try_hit("alice"), second.try_hit("alice"), first.try_hit("alice")] == [0.0, 0.0, 0.0]
    wait = second.try_hit("alice")  # the 4th job in a minute, whichever process it reaches
    assert 55 < wait <= 60
    assert first.try_hit("bob") == 0.0  # per key
    second.reset("alice")
    assert first.try_hit("alice") == 0.0


def login_scenario(first: LoginThrottle, second: LoginThrottle) -> list[bool]:
    """Failed logins alternating between two processes; which later attempts are blocked."""
    first.failed("alice", "10.0.0.1")
    second.failed("alice", "10.0.0.1")
    blocked = [first.blocked("alice", "10.0.0.1") > 0, first.blocked("bob", "10.0.0.1") > 0]  # per username
    second.failed("bob", "10.0.0.1")
    blocked.append(first.blocked("carol", "10.0.0.1") > 0)  # password spraying: the per-address budget
    blocked.append(first.blocked("carol", "10.0.0.2") > 0)
    return blocked


def test_login_throttle_budgets_across_processes(name: str) -> None:
    """Failures counted by one process block the next guess in another, exactly as in one process."""
    from limner.services.jobs.redis_window import RedisSlidingWindow

    shared = [LoginThrottle(RedisSlidingWindow(REDIS_URL, name, 2, 300.0), per_address_limit=3) for _ in range(2)]
    alone = LoginThrottle(SlidingWindow(2, 300.0), per_address_limit=3)
    assert login_scenario(*shared) == login_scenario(alone, alone) == [True, False, True, False]


def test_in_memory_without_a_redis_url() -> None:
    window = _window(Settings(_env_file=None), "jobs", 5, 60.0)  # type: ignore[call-arg]
    assert type(window) is SlidingWindow
