"""One error envelope for every error: ``{"error": {"type", "code", "message", "param"}}``.

Why: clients (and the official ``openai`` client, which reads the same shape) handle one format;
validation errors, 404s and rate limits all look alike, and no stack trace ever leaves the server.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from limner.core.errors import (
    AuthenticationError,
    ConflictError,
    DeadlineExceededError,
    GenerationCanceledError,
    ImageTooLargeError,
    InvalidRequestError,
    LimnerError,
    ModelDownloadError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnsupportedImageFormatError,
    UnsupportedMediaTypeError,
)
from limner.http_client import ProviderError

logger = logging.getLogger(__name__)

# One status for every invalid request, whether FastAPI's parameter validation or a service's
# InvalidRequestError caught it: 400, as the OpenAI API answers, so a client handles one case.
VALIDATION_STATUS = 400

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[LimnerError], int, str], ...] = (
    (UnsupportedImageFormatError, 415, "invalid_request_error"),
    (UnsupportedMediaTypeError, 415, "invalid_request_error"),
    (ImageTooLargeError, 413, "invalid_request_error"),
    (InvalidRequestError, 400, "invalid_request_error"),
    (NotFoundError, 404, "not_found_error"),
    (ConflictError, 409, "conflict_error"),
    (AuthenticationError, 401, "authentication_error"),
    (PermissionDeniedError, 403, "permission_error"),
    (RateLimitedError, 429, "rate_limit_error"),
    (ModelDownloadError, 502, "upstream_error"),
    (ProviderError, 502, "upstream_error"),
    (GenerationCanceledError, 409, "conflict_error"),
    (DeadlineExceededError, 504, "timeout_error"),
)
_HTTP_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def envelope(status: int, kind: str, code: str, message: str, param: str | None = None, **headers: str) -> JSONResponse:
    body = {"error": {"type": kind, "code": code, "message": message, "param": param}}
    return JSONResponse(body, status_code=status, headers=headers or None)


def limner_error_response(exc: LimnerError) -> JSONResponse:
    headers: dict[str, str] = {}
    status, kind = 500, "server_error"
    for error_class, error_status, error_kind in _STATUS:
        if isinstance(exc, error_class):
            status, kind = error_status, error_kind
            break
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        if exc.code == "queue_full":
            status = 503
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return envelope(status, kind, exc.code, exc.public_message, exc.param, **headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LimnerError)
    async def _limner(_: Request, exc: LimnerError) -> JSONResponse:
        return limner_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        param = ".".join(location) or None
        return envelope(VALIDATION_STATUS, "invalid_request_error", "validation_error",
                        f"{param}: {message}" if param else message, param)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_TYPES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "invalid_request_error")
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        return envelope(exc.status_code, kind, code, str(exc.detail), None, **headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return envelope(500, "server_error", "internal_error", "internal server error; the server log has details")
