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
