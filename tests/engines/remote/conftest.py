"""Fixtures for remote engine tests: loopback fakes, fast retry options, settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from limner.config import Settings
from limner.core.progress import CancelToken
from limner.http_client import HttpOptions, RetryPolicy
from tests.engines.remote.fakes import KEY, FakeOpenAI, FakeReplicate, FakeStability, serve
from tests.engines.remote.loopback import LoopbackServer


class RecordingSleep:
    """Stands in for the backoff sleep: records each delay, sleeps not at all, still honours cancel."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float, cancel: CancelToken) -> None:
        self.delays.append(seconds)
        if cancel.canceled:
            from limner.core.errors import GenerationCanceledError

            raise GenerationCanceledError("generation canceled")


@pytest.fixture
def sleeper() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def options(sleeper: RecordingSleep) -> HttpOptions:
    return HttpOptions(
        timeout_s=2.0,
        retry=RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=4.0, jitter=0.0, max_retry_after_s=10.0),
        poll_interval_s=0.01,
        replicate_wait_s=5,
        sleep=sleeper,
    )


def remote_settings(**urls: str) -> Settings:
    return Settings(
        openai_api_key=KEY,
        replicate_api_token=KEY,
        stability_api_key=KEY,
        _env_file=None,  # type: ignore[call-arg]
        **urls,
    )


@pytest.fixture
def openai_fake() -> Iterator[tuple[FakeOpenAI, LoopbackServer]]:
    fake = FakeOpenAI()
    with serve(fake) as server:
        yield fake, server


@pytest.fixture
def replicate_fake() -> Iterator[tuple[FakeReplicate, LoopbackServer]]:
    fake = FakeReplicate()
    with serve(fake) as server:
        yield fake, server


@pytest.fixture
def stability_fake() -> Iterator[tuple[FakeStability, LoopbackServer]]:
    fake = FakeStability()
    with serve(fake) as server:
        yield fake, server
