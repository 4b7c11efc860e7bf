"""Errors of the REST API as the UI sees them, and the sentence a person reads for each.

Why one exception type: every route answers ``{"error": {"type", "code", "message", "param"}}``;
the client turns that envelope (or a dead connection) into :class:`ApiError`, and the pages show
:meth:`ApiError.readable` instead of a stack trace.

Why a table of codes: the server's messages are written for developers and for the CLI (field
names, flags, settings variables, validation-library wording). A person in the studio gets one
sentence per error code saying what happened and what to do; only for an invalid request, where
the server's words carry the detail (``must be a multiple of 8``), are they kept, cleaned by
:func:`humane`.
"""

from __future__ import annotations

import re
from typing import Any

# What happened and what to do, by the API's error code.
_BY_CODE = {
    "unauthenticated": "The username or password is wrong, or your session has ended. Sign in again.",
    "permission_denied": "Your account is not allowed to do this. Ask an administrator if you need it.",
    "not_found": "That is no longer there (it may have been deleted). Refresh the page and pick another.",
    "conflict": "That clashes with something that exists already (a name in use, say). Choose another name.",
    "rate_limited": "You are sending requests faster than this server allows. Wait a moment, then try again.",
    "queue_full": "The server's queue is full. Wait for some pictures to finish, then try again.",
    "model_not_found": "That model is not on this server. Pick one from the list, or ask an administrator to add it.",
    "unsafe_model_format": (
        "That model's files are in a format the server refuses for safety. Ask an administrator for a "
        "safetensors version."
    ),
    "unsupported_task": (
        "The chosen model cannot do this kind of picture. Pick another model (the model list says what each can do)."
    ),
    "model_download_failed": (
        "The model could not be downloaded to the server (it may be offline). Ask an administrator to install it."
    ),
    "unsupported_image_format": "That file is not a picture the server can read. Use a PNG, JPEG or WebP picture.",
    "unsupported_media_type": "That file is not a picture the server can read. Use a PNG, JPEG or WebP picture.",
    "image_too_large": "That picture is too large for this server. Use a smaller picture.",
    "request_too_large": "That is more than the server accepts at once. Use smaller or fewer pictures.",
    "deadline_exceeded": "The server took too long. Try again, perhaps with fewer steps or a smaller size.",
    "canceled": "The job was canceled.",
    "provider_not_configured": "That remote provider is not set up on this server. Pick a model that runs here.",
}
_BY_KIND = {
    "authentication_error": _BY_CODE["unauthenticated"],
    "permission_error": _BY_CODE["permission_denied"],
    "not_found_error": _BY_CODE["not_found"],
    "conflict_error": _BY_CODE["conflict"],
    "rate_limit_error": _BY_CODE["rate_limited"],
    "upstream_error": "A remote model or provider did not answer properly. Try again later, or pick a local model.",
    "timeout_error": _BY_CODE["deadline_exceeded"],
    "server_error": (
        "The server hit a problem it did not expect. Try again; if it keeps happening, tell an administrator."
    ),
}
_ABOUT_AN_INPUT = frozenset({"unsupported_image_format", "unsupported_media_type", "image_too_large"})
# Request fields as a person knows them from the forms.
FIELD_LABELS = {
    "prompt": "Prompt",
    "negative_prompt": "Negative prompt",
    "model": "Model",
    "width": "Width",
    "height": "Height",
    "size": "Size",
    "steps": "Steps",
    "guidance_scale": "Guidance",
    "image_guidance_scale": "Image guidance",
    "strength": "Strength",
    "seed": "Seed",
    "num_images": "Number of pictures",
    "n": "Number of pictures",
    "scheduler": "Scheduler",
    "loras": "LoRAs",
    "preset": "Preset",
    "style": "Style",
    "task": "Task",
    "init_image": "Start picture",
    "init_image_id": "Start picture",
    "image": "Picture",
    "mask_image": "Mask",
    "mask_image_id": "Mask",
    "reference_images": "Reference pictures",
    "reference_image_ids": "Reference pictures",
    "ip_adapter": "IP-Adapter",
    "ip_adapter_scale": "Reference strength",
    "character": "Character",
    "file": "Picture",
    "name": "Name",
    "username": "Username",
    "password": "Password",
    "path": "Path",
    "hub_id": "Hub id",
    "base_model": "Base model",
    "dataset": "Pictures",
    "config": "Training settings",
}
_PYDANTIC = (
    (re.compile(r"Input should be less than or equal to"), "must be at most"),
    (re.compile(r"Input should be greater than or equal to"), "must be at least"),
    (re.compile(r"Input should be less than"), "must be less than"),
    (re.compile(r"Input should be greater than"), "must be more than"),
    (re.compile(r"Input should be a valid integer[^.;]*"), "must be a whole number"),
    (re.compile(r"Input should be a valid number[^.;]*"), "must be a number"),
    (re.compile(r"Input should be"), "must be"),
    (re.compile(r"String should have at most (\d+) characters?"), r"must be at most \1 characters long"),
    (re.compile(r"String should have at least (\d+) characters?"), r"must be at least \1 characters long"),
    (re.compile(r"Field required"), "is needed"),
    (re.compile(r"^Value error, "), ""),
)
_ENV_VAR = re.compile(r"(?:\b(?:set|with|in|via) )?\b(?:LIMNER|HF|OPENAI|REPLICATE|STABILITY)_[A-Z0-9_]+\b")
_FLAG = re.compile(r"(?:,?\s*(?:or |and )?(?:pass|use|with|set|add)\s+)?\s*\(?--[a-z][a-z0-9-]*(?:[ =][^\s,;)]+)?\)?")
_CODE_SPAN = re.compile(r"\s*\(?[^()]*`[^`]*`[^()]*\)")
_ROUTE = re.compile(r"\s*\(see (?:GET|POST|PUT|PATCH|DELETE) [^)]*\)")


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
        """One or two sentences for a person: what happened and what to do (no field names, flags, variables)."""
        if self.kind == "connection_error":
            text = self.message
        elif self.kind == "permission_error" or self.code == "permission_denied":
            text = humane(self.message)
            if "admin" not in text.lower():
                text += " Ask an administrator if you need it."
        elif self.code in _BY_CODE and self.code not in ("not_found", "conflict"):
            text = _BY_CODE[self.code]
            label = FIELD_LABELS.get(self.param or "")
            if label and self.code in _ABOUT_AN_INPUT:
                text = f"{label}: {text[0].lower()}{text[1:]}"
        elif self.kind == "invalid_request_error" or self.status in (400, 404, 409, 415):
            text = humane(self.message, self.param)
        else:
            text = _BY_KIND.get(self.kind) or _BY_CODE.get(self.code) or _BY_KIND["server_error"]
        if self.retry_after:
            text += f" Try again in {self.retry_after:.0f} s."
        return text


def humane(message: str, param: str | None = None) -> str:
    """The server's own words, cleaned for a person: validation wording, variables, flags and routes gone.

    Whole sentences only: nothing is cut, and the result starts with a capital and ends with a stop.
    """
    text = message.strip()
    for pattern, replacement in _PYDANTIC:
        text = pattern.sub(replacement, text)
    text = _ROUTE.sub("", text)
    text = _CODE_SPAN.sub("", text)
    text = _ENV_VAR.sub("ask an administrator to set it up", text)
    text = _FLAG.sub("", text)
    text = text.replace("`", "")
    label = FIELD_LABELS.get(param or "")
    for field, name in FIELD_LABELS.items():  # "num_images: must be ..." -> "Number of pictures must be ..."
        if "_" in field:
            text = re.sub(rf"\b{field}\b", name.lower(), text)
    if param and text.startswith(f"{param}: "):
        text = text[len(param) + 2 :]
    text = re.sub(r"\s{2,}", " ", text).strip(" ;,")
    if label and not text.lower().startswith(label.lower()):
        text = f"{label}: {text}"
    return sentence(text or "The server refused the request")


def sentence(text: str) -> str:
    """Capital first letter, full stop at the end (unless it ends with ? ! or .)."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def unreachable(url: str, reason: str) -> ApiError:
    """The connection itself failed: name the URL so a wrong address is obvious."""
    message = (
        f"The studio cannot reach the limner server at {url} ({reason}). Check that the server is running "
        "and that this is its address."
    )
    return ApiError(0, "connection_error", "unreachable", message)


def _seconds(header: str | None) -> float | None:
    try:
        return float(header) if header else None
    except ValueError:
        return None
