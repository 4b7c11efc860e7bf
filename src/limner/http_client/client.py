"""HTTP for remote services (image providers, the prompt LLM): one client per run, retries with backoff,
cancel-aware waits.

Why one place: every remote service needs the same timeouts, the same retry rule (429 and 5xx are
retried with exponential backoff honouring ``Retry-After``; other 4xx never are) and the same
mapping of failures to limner errors. Each caller only says how to read its error bodies.

Waiting is injectable (``HttpOptions.sleep``) so tests run the real retry code without real sleeps.
A blocking request runs in a worker thread so a cancel returns at once even while a provider holds
the connection open; closing the client at the end of the run aborts the abandoned request.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from limner.core.errors import GenerationCanceledError
from limner.core.progress import CancelToken
from limner.http_client.errors import (
    ContentPolicyError,
    ProviderAuthError,
    ProviderError,
    ProviderRequestError,
)

T = TypeVar("T")
Sleeper = Callable[[float, CancelToken], None]

_WAIT_SLICE_S = 0.05


def cancelable_sleep(seconds: float, cancel: CancelToken) -> None:
    """Sleep up to ``seconds``, waking early (and raising) when ``cancel`` is set."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        if cancel.canceled:
            raise GenerationCanceledError("generation canceled")
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(_WAIT_SLICE_S, left))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Delay n (1-based) is ``base * 2**(n-1)``, capped, with jitter."""

    max_attempts: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    jitter: float = 0.2

    def backoff(self, failures: int) -> float:
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, failures - 1))
        if self.jitter:
            delay *= 1.0 + random.uniform(-self.jitter, self.jitter)  # spreads retries; not for secrets
        return max(0.0, delay)


@dataclass(frozen=True)
class HttpOptions:
    """Timeouts, retries and polling for remote calls. Defaults suit real providers; tests shrink them."""

    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval_s: float = 1.0
    max_wait_s: float = 1800.0
    replicate_wait_s: int = 30
    max_download_bytes: int = 64 * 1024 * 1024
    sleep: Sleeper = cancelable_sleep

    def timeout(self, read_s: float | None = None) -> httpx.Timeout:
        read = self.timeout_s if read_s is None else read_s
        return httpx.Timeout(read, connect=min(self.connect_timeout_s, read))


@dataclass(frozen=True)
class ErrorInfo:
    """What a provider's error body says: a readable message, its code, and whether moderation refused."""

    message: str
    code: str | None = None
    moderation: bool = False


ErrorReader = Callable[[httpx.Response], ErrorInfo]


def generic_error(response: httpx.Response) -> ErrorInfo:
    """Best effort for bodies no provider-specific reader understood: JSON message fields, else text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return ErrorInfo(text[:500] or f"HTTP {response.status_code}")
    return ErrorInfo(_first_message(body) or f"HTTP {response.status_code}")


def _first_message(body: Any) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        texts = [text for item in body if (text := _first_message(item))]
        return "; ".join(texts) if texts else None
    if isinstance(body, dict):
        for key in ("error", "message", "detail", "errors", "title"):
            if key in body and (text := _first_message(body[key])):
                return text
    return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds the provider asks us to wait: ``retry-after-ms``, or ``Retry-After`` as seconds or a date."""
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def run_cancelable(work: Callable[[], T], cancel: CancelToken, poll_s: float = _WAIT_SLICE_S) -> T:
    """Run ``work`` in a daemon thread; return its result, re-raise its error, or raise on cancel at once."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="limner-remote-call", daemon=True)
    thread.start()
    while thread.is_alive():
        if cancel.canceled:
            raise GenerationCanceledError("generation canceled")
        thread.join(poll_s)
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


class ProviderHttp:
    """An HTTP session with one provider for the length of one run (use as a context manager)."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        options: HttpOptions,
        read_error: ErrorReader = generic_error,
        credential_name: str | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.options = options
        self._headers = dict(headers)
        self._read_error = read_error
        self._credential_name = credential_name
        self._client = httpx.Client(timeout=options.timeout(), follow_redirects=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        cancel: CancelToken,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout_s: float | None = None,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise the limner error for the failure.

        A timed-out or dropped ``POST`` is not sent again (the provider may already be making, and
        charging for, the image); ``GET`` is, like 429 and 5xx answers to any method.
        """
        url = self.url(path_or_url)
        merged = {**self._headers, **(headers or {})}
        policy = self.options.retry
        idempotent = method.upper() in ("GET", "HEAD")
        timeout = self.options.timeout(read_timeout_s)
        failures = 0
        while True:
            if cancel.canceled:
                raise GenerationCanceledError("generation canceled")

            def attempt() -> httpx.Response:
                return self._client.request(method, url, json=json, files=files, headers=merged, timeout=timeout)

            try:
                response = run_cancelable(attempt, cancel)
            except httpx.TimeoutException as exc:
                failures += 1
                if not idempotent or failures >= policy.max_attempts:
                    raise ProviderError(self._timeout_message(exc, timeout), provider=self.provider) from None
                self.options.sleep(policy.backoff(failures), cancel)
                continue
            except httpx.TransportError as exc:
                failures += 1
                # A connection that never opened carried no request, so resending is safe for any method.
                unsent = isinstance(exc, httpx.ConnectError)
                if not (idempotent or unsent) or failures >= policy.max_attempts:
                    raise ProviderError(
                        f"cannot reach {_origin(url)} ({type(exc).__name__}: {exc})", provider=self.provider
                    ) from None
                self.options.sleep(policy.backoff(failures), cancel)
                continue
            if response.is_success:
                return response
            failures += 1
            if _retryable(response.status_code) and failures < policy.max_attempts:
                wait = retry_after_seconds(response)
                if wait is not None and wait > policy.max_retry_after_s:
                    raise self.error_for(response, extra=f"asked to retry after {wait:.0f}s")
                self.options.sleep(wait if wait is not None else policy.backoff(failures), cancel)
                continue
            raise self.error_for(response)

    def get_json(self, path_or_url: str, *, cancel: CancelToken) -> Any:
        return self.json_of(self.request("GET", path_or_url, cancel=cancel))

    def json_of(self, response: httpx.Response) -> Any:
        """The JSON body of a successful answer, or a ProviderError saying it is not JSON."""
        try:
            return response.json()
        except ValueError:
            snippet = response.text[:200].strip()
            raise ProviderError(
                f"answered with something that is not JSON: {snippet!r}", provider=self.provider, status=200
            ) from None

    def download(self, url: str, *, cancel: CancelToken) -> bytes:
        """Fetch an output file (``https://`` or ``data:``), capped at ``max_download_bytes``.

        Our key goes only to the provider's own origin, never to a CDN that an answer points at.
        """
        if url.startswith("data:"):
            return _decode_data_url(url, self.provider)
        if not url.startswith(("http://", "https://")):
            raise ProviderError(f"returned an output that is not a URL: {url[:100]!r}", provider=self.provider)
        same_origin = _origin(url) == _origin(self.base_url)
        headers = self._headers if same_origin else {}

        def fetch() -> bytes:
            with self._client.stream("GET", url, headers=headers) as response:
                if not response.is_success:
                    response.read()
                    raise self.error_for(response, extra=f"downloading {url}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.options.max_download_bytes:
                        raise ProviderError(
                            f"output file is larger than {self.options.max_download_bytes} bytes",
                            provider=self.provider,
                        )
                    chunks.append(chunk)
                return b"".join(chunks)

        try:
            return run_cancelable(fetch, cancel)
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot download {url} ({type(exc).__name__})", provider=self.provider) from None

    def error_for(self, response: httpx.Response, *, extra: str | None = None) -> ProviderError:
        """The limner error for a non-2xx answer, carrying the provider's own message."""
        try:
            info = self._read_error(response)
        except Exception:  # a reader must never hide the real failure behind its own bug
            info = generic_error(response)
        status = response.status_code
        message = info.message + (f" ({extra})" if extra else "")
        if info.moderation:
            return ContentPolicyError(message, provider=self.provider, status=status)
        if status in (401, 403):
            hint = f" - check {self._credential_name}" if self._credential_name else ""
            return ProviderAuthError(
                f"rejected the credentials (HTTP {status}): {message}{hint}", provider=self.provider, status=status
            )
        if status == 402:
            return ProviderAuthError(f"payment required: {message}", provider=self.provider, status=status)
        if status == 429:
            return ProviderError(f"rate limited (HTTP 429): {message}", provider=self.provider, status=status)
        if 400 <= status < 500:
            return ProviderRequestError(message, provider=self.provider, status=status)
        return ProviderError(f"failed (HTTP {status}): {message}", provider=self.provider, status=status)

    def _timeout_message(self, exc: httpx.TimeoutException, timeout: httpx.Timeout) -> str:
        which = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for an answer"
        limit = timeout.connect if isinstance(exc, httpx.ConnectTimeout) else timeout.read
        return f"timed out {which} after {limit:g}s"


def _retryable(status: int) -> bool:
    """Rate limits and server errors pass; any other 4xx is the request's fault and would fail again."""
    return status == 429 or status >= 500


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _decode_data_url(url: str, provider: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise ProviderError("returned a data URL that is not base64", provider=provider)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderError("returned a data URL with broken base64", provider=provider) from None


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
