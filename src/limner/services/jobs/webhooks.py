"""Completion webhooks, signed so the receiver can trust them, sent only to public addresses.

The signature header is ``X-Limner-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`` over
``"<t>.<raw body>"`` with the job owner's webhook secret; receivers reject stale timestamps
(replay) and compare signatures in constant time (see :func:`verify_signature`).

Why the address rules: a webhook is a request the server makes to a URL any user chose, so
without them a user could make the server POST to its own admin ports, the LAN, or a cloud
metadata service (SSRF). :func:`check_webhook_url` refuses such URLs when a job is submitted; the
sender checks again at send time, on every address the host name resolves to, and connects to
the address it checked, so a name that later resolves elsewhere (DNS rebinding) gets nowhere.
An admin setting turns both checks off for trusted networks.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from limner.core.errors import InvalidRequestError

SIGNATURE_HEADER = "X-Limner-Signature"
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

    def send(self, url: str, secret: str, payload: dict[str, Any]) -> bool:
        """POST the payload; retry a few times on network errors and 5xx. Never raises."""
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        for attempt in range(_ATTEMPTS):
            try:
                target = self._target(url)
            except InvalidRequestError as exc:
                logger.warning("webhook %s not sent: %s", url, exc.message)
                return False
            except OSError as exc:  # the name did not resolve (now): retry like a network error
                logger.warning("webhook %s attempt %d failed: %s", url, attempt + 1, exc)
            else:
                signature = sign(secret, int(time.time()), body)
                headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature, **target.headers}
                try:
                    response = self._client.post(
                        target.url, content=body, headers=headers, extensions=target.extensions
                    )
                except httpx.HTTPError as exc:
                    logger.warning("webhook %s attempt %d failed: %s", url, attempt + 1, exc)
                else:
                    if response.status_code < 500:
                        return response.is_success
            time.sleep(0.5 * 2**attempt)
        return False

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
