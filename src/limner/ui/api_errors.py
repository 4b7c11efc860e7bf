"""Errors of the REST API as the UI sees them, and the sentence a person reads for each.

Why one exception type: every route answers ``{"error": {"type", "code", "message", "param"}}``;
the client turns that envelope (or a dead connection) into :class:`ApiError`, and the pages show
:meth:`ApiError.readable` instead of a stack trace.
"""

from __future__ import annotations

from typing import Any

_KIND_LABELS = {
    "invalid_request_error": "The server refused the request",
    "authentication_error": "Not signed in",
    "permission_error": "Not allowed",
    "not_found_error": "Not found",
    "conflict_error": "Conflict",
    "rate_limit_error": "Too many requests",
    "upstream_error": "A model or provider could not be reached",
    "timeout_error": "Timed out",
    "server_error": "The server failed",
    "connection_error": "The server cannot be reached",
}


class ApiError(Exception):
    """One error answered by the API (or a failed connection, with ``status`` 0)."""

    def __init__(
        self,
        status: int,
        kind: str,
        code: str,
        message: str,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code
        self.message = message
        self.param = param
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, status: int, body: Any, retry_after: str | None = None) -> ApiError:
        """Read the error envelope; a body that is not one (a proxy's HTML page) still gives a message."""
        error = body.get("error") if isinstance(body, dict) else None
        wait = _seconds(retry_after)
        if isinstance(error, dict):
            return cls(
                status,
                str(error.get("type") or "server_error"),
                str(error.get("code") or "error"),
                str(error.get("message") or f"HTTP {status}"),
                str(error["param"]) if error.get("param") else None,
                wait,
            )
        text = body if isinstance(body, str) else ""
        return cls(status, "server_error", f"http_{status}", f"HTTP {status} {text[:200]}".strip(), None, wait)

    @property
    def unauthenticated(self) -> bool:
        return self.status == 401

    @property
    def route_missing(self) -> bool:
        """A 404 for the route itself (FastAPI's ``Not Found``), not for an object of a known route."""
        return self.status in (404, 405) and self.message in ("Not Found", "Method Not Allowed")

    def readable(self) -> str:
        """One or two sentences for a person: what happened, which field, what to do."""
        label = _KIND_LABELS.get(self.kind, "Error")
        field = f" (field `{self.param}`)" if self.param else ""
        text = f"{label}{field}: {self.message}"
        if self.unauthenticated:
            text += " Sign in again."
        if self.retry_after:
            text += f" Try again in {self.retry_after:.0f} s."
        return text


def unreachable(url: str, reason: str) -> ApiError:
    """The connection itself failed: name the URL so a wrong ``--api-url`` is obvious."""
    message = f"no answer from the limner API at {url} ({reason}). Is `limner serve` running there?"
    return ApiError(0, "connection_error", "unreachable", message)


def _seconds(header: str | None) -> float | None:
    try:
        return float(header) if header else None
    except ValueError:
        return None
