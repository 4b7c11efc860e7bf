"""Completion webhooks, signed so the receiver can trust them, sent only to public addresses.

Signatures follow Standard Webhooks (https://www.standardwebhooks.com), so receivers verify with
stock libraries (``standardwebhooks.Webhook(secret)``): ``webhook-id`` (the same on every retry of
one event, for de-duplication), ``webhook-timestamp`` (unix seconds) and ``webhook-signature:
v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">``. The key is the job owner's webhook
secret as UTF-8 bytes; for libraries that take a ``whsec_`` string it is
:func:`standard_secret` of it. The older ``X-Limner-Signature: t=<unix time>,v1=<hex HMAC-SHA256>``
over ``"<t>.<raw body>"`` is still sent beside it (see :func:`verify_signature`).

Why deliveries run in their own thread (:class:`WebhookDeliveries`): a receiver that is slow or
down would otherwise hold the GPU worker for every retry; here the worker hands the event over
and goes on, and the delivery thread retries with exponential backoff.

Why the address rules: a webhook is a request the server makes to a URL any user chose, so
without them a user could make the server POST to its own admin ports, the LAN, or a cloud
metadata service (SSRF). :func:`check_webhook_url` refuses such URLs when a job is submitted; the
sender checks again at send time, on every address the host name resolves to, and connects to
the address it checked, so a name that later resolves elsewhere (DNS rebinding) gets nowhere.
An admin setting turns both checks off for trusted networks.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import ipaddress
import json
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from limner.core.errors import InvalidRequestError

SIGNATURE_HEADER = "X-Limner-Signature"
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
DEFAULT_TOLERANCE_SECONDS = 300
_ATTEMPTS = 3

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""Host name and port -> the addresses it resolves to (``socket.getaddrinfo`` in production)."""

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

logger = logging.getLogger(__name__)


class WebhookRefusedError(InvalidRequestError):
    """The webhook URL points at an address the server must not call."""

    code = "webhook_url_refused"


def address_problem(address: IPAddress) -> str | None:
    """Why a webhook must not go to ``address`` (a phrase for a message), or None for a public one.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged by that address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    checks: tuple[tuple[bool, str], ...] = (
        (address in _METADATA, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private network address"),
        (not address.is_global, "not a public internet address"),
    )
    return next((problem for refused, problem in checks if refused), None)


def _literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal means, including IPv4 shorthands like ``127.1``."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # 2130706433, 0x7f.1 ... (no DNS lookup)
    except OSError:
        return None


def _refused(host: str, problem: str) -> WebhookRefusedError:
    return WebhookRefusedError(
        f"webhook_url host {host!r} is {problem}; webhooks go only to public internet addresses "
        "(an admin can allow private ones)",
        param="webhook_url",
    )


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL that is not http(s), or names a local host or a non-public IP address.

    Host names are not resolved here (that would make submission depend on DNS); the sender
    checks every resolved address when it sends.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequestError("webhook_url must be an http:// or https:// URL with a host", param="webhook_url")
    if allow_private:
        return
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        raise _refused(host, "a local host name")
    address = _literal_address(host)
    if address is not None and (problem := address_problem(address)) is not None:
        raise _refused(host, problem)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str, body: bytes, now: float | None = None, tolerance: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """Check a signature header as a receiver would (for clients and tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def standard_secret(secret: str) -> str:
    """The owner's secret in the ``whsec_<base64>`` form Standard Webhooks libraries take."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def sign_standard(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    digest = hmac.new(secret.encode(), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(secret: str, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    sent_at = int(time.time()) if timestamp is None else timestamp
    return {
        WEBHOOK_ID_HEADER: message_id,
        WEBHOOK_TIMESTAMP_HEADER: str(sent_at),
        WEBHOOK_SIGNATURE_HEADER: sign_standard(secret, message_id, sent_at, body),
    }


@dataclass(frozen=True)
class _Target:
    """Where to send: the URL to connect to, and what keeps the original host name visible to the receiver."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


class WebhookSender:
    """POSTs signed payloads; unless ``allow_private``, only to checked public addresses."""

    def __init__(
        self,
        timeout: float,
        client: httpx.Client | None = None,
        *,
        allow_private: bool = False,
        resolver: Resolver = resolve,
    ) -> None:
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._allow_private = allow_private
        self._resolver = resolver

    def send(self, url: str, secret: str, payload: dict[str, Any], message_id: str | None = None) -> bool:
        """POST the payload; retry a few times on network errors and 5xx, here. Never raises.

        For the worker, :class:`WebhookDeliveries` does the retrying in its own thread instead.
        """
        message_id = message_id or f"msg_{uuid.uuid4().hex}"
        body = encode(payload)
        for attempt in range(_ATTEMPTS):
            outcome = self.attempt(url, secret, body, message_id)
            if outcome is not None:
                return outcome
            if attempt + 1 < _ATTEMPTS:
                time.sleep(0.5 * 2**attempt)
        return False

    def attempt(self, url: str, secret: str, body: bytes, message_id: str) -> bool | None:
        """One POST: True delivered, False never worth retrying (refused URL, 4xx), None try again later."""
        try:
            target = self._target(url)
        except InvalidRequestError as exc:
            logger.warning("webhook %s not sent: %s", url, exc.message)
            return False
        except OSError as exc:  # the name did not resolve (now): retry like a network error
            logger.warning("webhook %s failed: %s", url, exc)
            return None
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
            **standard_headers(secret, message_id, body),
            **target.headers,
        }
        try:
            response = self._client.post(target.url, content=body, headers=headers, extensions=target.extensions)
        except httpx.HTTPError as exc:
            logger.warning("webhook %s failed: %s", url, exc)
            return None
        if response.status_code >= 500 or response.status_code == 429:
            return None
        return response.is_success

    def _target(self, url: str) -> _Target:
        """Check the URL and every address its host resolves to; connect to the first, by address.

        Connecting to the checked address (with the original Host header, and the name for TLS
        SNI and certificate checks) is what defeats DNS rebinding: the name is not looked up again.
        """
        check_webhook_url(url, allow_private=self._allow_private)
        if self._allow_private:
            return _Target(url)
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = [ipaddress.ip_address(text.split("%", 1)[0]) for text in self._resolver(host, port)]
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        for address in addresses:
            if (problem := address_problem(address)) is not None:
                raise _refused(host, f"resolved to {address}, {problem}")
        pinned = parsed.copy_with(host=str(addresses[0]))
        extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
        return _Target(str(pinned), {"Host": parsed.netloc.decode("ascii")}, extensions)

    def close(self) -> None:
        self._client.close()


def encode(payload: dict[str, Any]) -> bytes:
    """The exact body bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


@dataclass(order=True)
class _Delivery:
    due: float
    sequence: int
    url: str = field(compare=False)
    secret: str = field(compare=False, repr=False)
    body: bytes = field(compare=False)
    message_id: str = field(compare=False)
    attempts: int = field(default=0, compare=False)


class WebhookDeliveries:
    """Delivers webhooks from one thread of their own, retrying with exponential backoff and jitter.

    ``submit`` returns at once: the worker thread that finished a job never waits for a receiver.
    A failed attempt is scheduled again after ``first_delay * 2**n`` seconds (at most
    ``max_delay``), up to ``max_attempts`` tries; meanwhile other deliveries go ahead. Every try
    of one event carries the same ``webhook-id``. Pending deliveries live in memory: a worker that
    is killed loses the ones not yet sent (the job row keeps the outcome, readable by the API).
    """

    def __init__(
        self,
        sender: WebhookSender,
        *,
        max_attempts: int = 6,
        first_delay: float = 1.0,
        max_delay: float = 300.0,
    ) -> None:
        self._sender = sender
        self._max_attempts = max_attempts
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._pending: list[_Delivery] = []
        self._changed = threading.Condition()
        self._sequence = 0
        self._thread: threading.Thread | None = None
        self._closing = False
        self.delivered = 0
        self.dropped = 0

    def submit(self, url: str, secret: str, payload: dict[str, Any], message_id: str) -> None:
        """Queue one event for ``url``; it is sent (and retried) from the delivery thread."""
        with self._changed:
            self._sequence += 1
            heapq.heappush(self._pending, _Delivery(time.monotonic(), self._sequence, url, secret,
                                                    encode(payload), message_id))  # fmt: skip
            if self._thread is None or not self._thread.is_alive():
                self._closing = False
                self._thread = threading.Thread(target=self._run, name="webhook-deliveries", daemon=True)
                self._thread.start()
            self._changed.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is due within ``timeout`` seconds, then stop the thread (retries left are dropped)."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next(self) -> _Delivery | None:
        with self._changed:
            while True:
                now = time.monotonic()
                if self._pending and self._pending[0].due <= now:
                    return heapq.heappop(self._pending)
                if self._closing:
                    self.dropped += len(self._pending)
                    self._pending.clear()
                    return None
                wait = self._pending[0].due - now if self._pending else None
                self._changed.wait(wait)

    def _run(self) -> None:
        while (delivery := self._next()) is not None:
            delivery.attempts += 1
            try:
                outcome = self._sender.attempt(delivery.url, delivery.secret, delivery.body, delivery.message_id)
            except Exception:  # a bug must not end deliveries for everyone
                logger.exception("webhook %s failed", delivery.url)
                outcome = None
            if outcome is True:
                self.delivered += 1
            elif outcome is None and delivery.attempts < self._max_attempts:
                delay = min(self._first_delay * 2 ** (delivery.attempts - 1), self._max_delay)
                delivery.due = time.monotonic() + delay * random.uniform(0.8, 1.2)
                with self._changed:
                    heapq.heappush(self._pending, delivery)
            else:
                self.dropped += 1
                logger.warning("webhook %s given up after %d attempt(s)", delivery.url, delivery.attempts)
