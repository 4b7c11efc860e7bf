"""Completion webhooks, signed so the receiver can trust them.

The signature header is ``X-Limner-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`` over
``"<t>.<raw body>"`` with the job owner's webhook secret; receivers reject stale timestamps
(replay) and compare signatures in constant time (see :func:`verify_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

SIGNATURE_HEADER = "X-Limner-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
_ATTEMPTS = 3

logger = logging.getLogger(__name__)


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


class WebhookSender:
    def __init__(self, timeout: float, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, url: str, secret: str, payload: dict[str, Any]) -> bool:
        """POST the payload; retry a few times on network errors and 5xx. Never raises."""
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        for attempt in range(_ATTEMPTS):
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, int(time.time()), body)}
            try:
                response = self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                logger.warning("webhook %s attempt %d failed: %s", url, attempt + 1, exc)
            else:
                if response.status_code < 500:
                    return response.is_success
            time.sleep(0.5 * 2**attempt)
        return False

    def close(self) -> None:
        self._client.close()
