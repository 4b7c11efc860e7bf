"""Retries, Retry-After, timeouts and error mapping of the shared HTTP client (providers and the prompt LLM)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from limner.core.errors import GenerationCanceledError, InvalidRequestError
from limner.core.progress import CancelToken
from limner.http_client import (
    HttpOptions,
    ProviderAuthError,
    ProviderError,
    ProviderHttp,
    ProviderRequestError,
    RetryPolicy,
    retry_after_seconds,
    run_cancelable,
)
from tests.engines.remote.conftest import RecordingSleep
from tests.engines.remote.loopback import LoopbackServer, Recorded, Reply


def scripted(*replies: Reply) -> LoopbackServer:
    queue = list(replies)
    return LoopbackServer(lambda _: queue.pop(0) if len(queue) > 1 else queue[0])


def session(server: LoopbackServer, options: HttpOptions) -> ProviderHttp:
    return ProviderHttp(
        provider="acme",
        base_url=server.url,
        headers={"Authorization": "Bearer k"},
        options=options,
        credential_name="ACME_KEY",
    )


def test_429_then_success_honours_retry_after(options: HttpOptions, sleeper: RecordingSleep) -> None:
    server = scripted(Reply(429, json={"error": "slow down"}, headers={"Retry-After": "2"}), Reply(json={"ok": True}))
    try:
        with session(server, options) as http:
            assert http.get_json("thing", cancel=CancelToken()) == {"ok": True}
    finally:
        server.close()
    assert sleeper.delays == [2.0]
    assert len(server.requests) == 2


def test_5xx_backs_off_exponentially_then_reports(options: HttpOptions, sleeper: RecordingSleep) -> None:
    server = scripted(Reply(503, json={"error": {"message": "overloaded"}}))
    try:
        with session(server, options) as http, pytest.raises(ProviderError) as caught:
            http.request("POST", "thing", json={}, cancel=CancelToken())
    finally:
        server.close()
    assert sleeper.delays == [0.5, 1.0]  # three attempts, base 0.5 doubling
    assert len(server.requests) == 3
    assert caught.value.code == "provider_error"
    assert "HTTP 503" in str(caught.value)
    assert "overloaded" in str(caught.value)


def test_other_4xx_is_not_retried_and_is_the_callers_error(options: HttpOptions, sleeper: RecordingSleep) -> None:
    server = scripted(Reply(400, json={"error": {"message": "size is wrong"}}))
    try:
        with session(server, options) as http, pytest.raises(ProviderRequestError) as caught:
            http.request("POST", "thing", json={}, cancel=CancelToken())
    finally:
        server.close()
    assert len(server.requests) == 1
    assert sleeper.delays == []
    assert isinstance(caught.value, InvalidRequestError)  # the API answers 4xx with our envelope, never 500
    assert str(caught.value) == "acme: size is wrong"


def test_401_names_the_key_variable(options: HttpOptions) -> None:
    server = scripted(Reply(401, json={"message": "bad key"}))
    try:
        with session(server, options) as http, pytest.raises(ProviderAuthError, match="ACME_KEY"):
            http.request("GET", "thing", cancel=CancelToken())
    finally:
        server.close()


def test_retry_after_beyond_the_cap_fails_at_once(options: HttpOptions, sleeper: RecordingSleep) -> None:
    server = scripted(Reply(429, json={"error": "quota"}, headers={"Retry-After": "3600"}))
    try:
        with session(server, options) as http, pytest.raises(ProviderError, match="retry after 3600s"):
            http.request("GET", "thing", cancel=CancelToken())
    finally:
        server.close()
    assert sleeper.delays == []


def test_slow_answer_times_out_and_a_post_is_not_resent(sleeper: RecordingSleep) -> None:
    server = scripted(Reply(json={"ok": True}, delay_s=0.5))
    options = HttpOptions(timeout_s=0.1, retry=RetryPolicy(max_attempts=3, jitter=0.0), sleep=sleeper)
    try:
        with session(server, options) as http, pytest.raises(ProviderError, match="timed out"):
            http.request("POST", "thing", json={}, cancel=CancelToken())
    finally:
        server.close()
    assert len(server.requests) == 1


def test_slow_get_is_retried(sleeper: RecordingSleep) -> None:
    server = scripted(Reply(json={"slow": True}, delay_s=0.4), Reply(json={"ok": True}))
    options = HttpOptions(
        timeout_s=0.1, retry=RetryPolicy(max_attempts=3, jitter=0.0, base_delay_s=0.01), sleep=sleeper
    )
    try:
        with session(server, options) as http:
            assert http.get_json("thing", cancel=CancelToken()) == {"ok": True}
    finally:
        server.close()


def test_malformed_json_is_a_clear_provider_error(options: HttpOptions) -> None:
    server = scripted(Reply(body=b"<html>gateway</html>", headers={"Content-Type": "text/html"}))
    try:
        with session(server, options) as http, pytest.raises(ProviderError, match="not JSON"):
            http.get_json("thing", cancel=CancelToken())
    finally:
        server.close()


def test_unreachable_host_is_a_provider_error(options: HttpOptions) -> None:
    server = scripted(Reply())
    url = server.url
    server.close()
    with (
        ProviderHttp(provider="acme", base_url=url, headers={}, options=options) as http,
        pytest.raises(ProviderError, match="cannot reach"),
    ):
        http.request("POST", "thing", json={}, cancel=CancelToken())


def test_cancel_returns_while_the_provider_holds_the_connection(options: HttpOptions) -> None:
    server = scripted(Reply(json={"ok": True}, delay_s=0.6))
    cancel = CancelToken()
    try:
        with session(server, options) as http:
            started = time.perf_counter()
            import threading

            threading.Timer(0.1, cancel.cancel).start()
            with pytest.raises(GenerationCanceledError):
                http.request("POST", "thing", json={}, cancel=cancel)
            assert time.perf_counter() - started < 0.5
    finally:
        server.close()


def test_download_sends_the_key_only_to_the_providers_origin(options: HttpOptions) -> None:
    seen: list[Recorded] = []

    def handler(request: Recorded) -> Reply:
        seen.append(request)
        return Reply(body=b"bytes")

    provider, cdn = LoopbackServer(handler), LoopbackServer(handler)
    try:
        with session(provider, options) as http:
            assert http.download(f"{provider.url}/file", cancel=CancelToken()) == b"bytes"
            assert http.download(f"{cdn.url.replace('127.0.0.1', 'localhost')}/file", cancel=CancelToken()) == b"bytes"
            assert http.download("data:image/png;base64,aGk=", cancel=CancelToken()) == b"hi"
    finally:
        provider.close()
        cdn.close()
    assert seen[0].headers.get("authorization") == "Bearer k"
    assert "authorization" not in seen[1].headers


def test_retry_after_forms() -> None:
    def response(**headers: str) -> httpx.Response:
        return httpx.Response(429, headers=headers)

    assert retry_after_seconds(response(**{"Retry-After": "7"})) == 7.0
    assert retry_after_seconds(response(**{"retry-after-ms": "250"})) == 0.25
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_seconds(response(**{"Retry-After": later})) or 0) <= 31
    assert retry_after_seconds(response()) is None
    assert retry_after_seconds(response(**{"Retry-After": "soon"})) is None


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_run_cancelable_reraises_the_workers_error() -> None:
    def boom() -> None:
        raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        run_cancelable(boom, CancelToken())
