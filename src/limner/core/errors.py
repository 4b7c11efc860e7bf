"""The errors limner raises on purpose.

Why one hierarchy: entry points (CLI, API) map these to an exit code or an HTTP status with a
message that says what to fix; anything else is a bug and is reported as one.
"""

from __future__ import annotations


class LimnerError(Exception):
    """Base of every error limner raises deliberately. ``code`` is stable for clients."""

    code = "limner_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __str__(self) -> str:
        return f"{self.param}: {self.message}" if self.param else self.message

    @property
    def public_message(self) -> str:
        """The message for API users, who cannot see or change the server (no variable names or paths).

        The same as :attr:`message` unless a subclass holds operator detail in it.
        """
        return self.message


class InvalidRequestError(LimnerError):
    """The request itself is wrong (a field, a combination of fields, an input image)."""

    code = "invalid_request"


class ModelNotFoundError(InvalidRequestError):
    """A model or LoRA reference that names nothing we can find or download."""

    code = "model_not_found"


class UnsafeModelFormatError(InvalidRequestError):
    """A weights file in a format that can run code when loaded (pickle), or a malformed one."""

    code = "unsafe_model_format"


class UnsupportedTaskError(InvalidRequestError):
    """The model exists but cannot do the asked task (e.g. txt2img on an InstructPix2Pix model)."""

    code = "unsupported_task"


class ModelDownloadError(LimnerError):
    """A hub model could not be fetched (offline, no network, gated, missing files)."""

    code = "model_download_failed"


class GenerationCanceledError(LimnerError):
    """The caller asked to stop; raised within one denoising step of the request."""

    code = "canceled"


class UnsupportedImageFormatError(InvalidRequestError):
    """An input picture in a format outside the allow-list (or not a picture at all)."""

    code = "unsupported_image_format"


class UnsupportedMediaTypeError(InvalidRequestError):
    """A request body in a content type the endpoint does not take (e.g. multipart where JSON is expected)."""

    code = "unsupported_media_type"


class ImageTooLargeError(InvalidRequestError):
    """An input picture over the byte or pixel cap."""

    code = "image_too_large"


class NotFoundError(LimnerError):
    """No such object for this caller (also what another user's object looks like)."""

    code = "not_found"


class ConflictError(LimnerError):
    code = "conflict"


class PermissionDeniedError(LimnerError):
    code = "permission_denied"


class AuthenticationError(LimnerError):
    code = "unauthenticated"


class RateLimitedError(LimnerError):
    """Too many requests; ``retry_after`` says when to try again."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after = retry_after


class QueueFullError(RateLimitedError):
    code = "queue_full"


class DeadlineExceededError(LimnerError):
    code = "deadline_exceeded"


def error_from_code(code: str | None, message: str) -> LimnerError:
    """Rebuild the error a job stored as (code, message), so callers get the right kind back."""
    pending: list[type[LimnerError]] = [LimnerError]
    while pending:
        candidate = pending.pop()
        if candidate.code == code:
            return candidate(message)
        pending.extend(candidate.__subclasses__())
    return LimnerError(message)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
