"""The error statuses each operation can answer, documented with the error envelope's schema.

Why one helper: generated clients and contract testers (Schemathesis) trust only what the
OpenAPI document says. Every route lists its possible error statuses through
:func:`error_responses`, so the document and the error handlers in ``api/errors.py`` agree on one
shape, ``{"error": {"type", "code", "message", "param"}}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    type: str = Field(description="Error class, e.g. invalid_request_error, authentication_error, not_found_error")
    code: str = Field(description="Stable machine-readable code, e.g. validation_error, not_found, queue_full")
    message: str = Field(description="What went wrong and what to change")
    param: str | None = Field(description="The request field at fault, when one is")


class ErrorEnvelope(BaseModel):
    """Every error limner answers, whatever its status."""

    error: ErrorBody


_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request: a field is missing, malformed or out of range (see `param`)",
    401: "Missing, invalid or expired credentials",
    403: "The credential lacks the scope or role this needs",
    404: "No such object, or it is not yours",
    409: "Conflicts with the object's current state (a duplicate name, a finished job)",
    413: "The request body or an uploaded picture is too large",
    415: "An uploaded file is not a PNG, JPEG or WebP picture",
    429: "Too many requests; wait for Retry-After seconds",
    502: "A model download or remote provider failed",
    503: "The queue is full; retry after Retry-After seconds",
    504: "The job did not finish in time",
}

AUTHENTICATED = (400, 401, 403)
"""What any operation behind credentials can answer: bad parameters, no credentials, no scope."""

WITH_BODY = (400, 413)
"""What any operation with a request body can answer (the body cap applies to every request)."""

UPLOADS = (413, 415)
"""What an operation that stores uploaded pictures can answer."""

SYNC_JOB = (404, 409, 429, 502, 503, 504)
"""What an operation that queues a job and waits for its images can answer."""


def error_responses(*statuses: int | tuple[int, ...]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given statuses (or groups of them), each with the envelope schema."""
    flat: set[int] = set()
    for status in statuses:
        flat.update(status if isinstance(status, tuple) else (status,))
    return {
        status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS.get(status, "Error")} for status in sorted(flat)
    }
