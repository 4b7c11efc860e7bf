"""Typed views of the API's JSON answers (users, jobs, progress events, images, server status).

Why our own pydantic models instead of importing the server's schemas: the studio is a client of
the REST API only and must keep working against a server of another version. Each model ignores
fields it does not know (``extra="ignore"``) and gives a missing or ``null`` optional field its
default, so an older or newer server still reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

FINISHED_STATUSES = frozenset({"succeeded", "failed", "canceled"})
KEEPALIVE = "keepalive"
"""The status of a keep-alive event: no news, but the caller gets a turn (to notice a click on Cancel)."""


def _or(default: Any) -> BeforeValidator:
    """Read ``null`` (and an empty value) as ``default``."""
    return BeforeValidator(lambda value: default if value is None or value == "" else value)


def _error_message(value: Any) -> str | None:
    """The API's error object ``{"code", "message"}`` as one sentence (its message, else its code)."""
    if isinstance(value, dict) and (value.get("message") or value.get("code")):
        return str(value.get("message") or value.get("code"))
    return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


Count = Annotated[int, _or(0)]
Fraction = Annotated[float, _or(0.0)]
Text = Annotated[str, _or("")]
Ids = Annotated[tuple[str, ...], _or(())]
Moment = Annotated[datetime | None, _or(None)]
ErrorText = Annotated[str | None, BeforeValidator(_error_message)]


class ApiModel(BaseModel):
    """An answer of the API: read-only, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class User(ApiModel):
    id: str
    username: str
    role: Annotated[str, _or("user")] = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Job(ApiModel):
    """A job as ``GET /v1/jobs/{id}`` returns it."""

    id: str
    status: Annotated[str, _or("queued")] = "queued"
    kind: Annotated[str, _or("generate")] = "generate"
    task: Text = ""
    model: str | None = None
    progress: Fraction = 0.0
    step: Count = 0
    total_steps: Count = 0
    queue_position: int | None = None
    result_image_ids: Ids = ()
    error: ErrorText = None
    request: Annotated[dict[str, Any], _or({})] = {}
    training: Annotated[dict[str, Any], _or({})] = {}
    created_at: Moment = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class JobEvent(ApiModel):
    """One server-sent progress event of a job (the same fields as a job, fewer of them).

    ``preview`` is a base64 PNG of the current step when the server sends one.
    """

    status: Annotated[str, _or("running")] = "running"
    step: Count = 0
    total_steps: Count = 0
    progress: Fraction = 0.0
    result_image_ids: Ids = ()
    error: ErrorText = None
    preview: Annotated[str | None, BeforeValidator(_text_or_none)] = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def keepalive(self) -> bool:
        return self.status == KEEPALIVE

    @classmethod
    def of_job(cls, job: Job) -> JobEvent:
        return cls(
            status=job.status,
            step=job.step,
            total_steps=job.total_steps,
            progress=job.progress,
            result_image_ids=job.result_image_ids,
            error=job.error,
        )


class ImageInfo(ApiModel):
    """A gallery entry (``GET /v1/images`` items)."""

    id: str
    kind: Annotated[str, _or("output")] = "output"
    job_id: str | None = None
    width: Count = 0
    height: Count = 0
    task: str | None = None
    model: str | None = None
    prompt: Text = ""
    seed: int | None = None
    created_at: Moment = None


class ImagePage(ApiModel):
    items: Annotated[tuple[ImageInfo, ...], _or(())] = ()
    total: Count = 0
    limit: Count = 0
    offset: Count = 0


class ImageDetails(ApiModel):
    """``GET /v1/images/{id}/metadata``: the gallery entry and every stored parameter."""

    image: ImageInfo
    parameters: Annotated[dict[str, Any], _or({})] = {}


class ServerStatus(ApiModel):
    """What the unauthenticated health endpoints tell: version, readiness, queue numbers."""

    version: str
    ready: bool
    checks: dict[str, str]
    queue_depth: int | None
    jobs_by_status: dict[str, int]


@dataclass(frozen=True)
class ImageQuery:
    """Filters and paging of the gallery, as query parameters of ``GET /v1/images`` (sent, not read)."""

    model: str | None = None
    task: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    limit: int = 24
    offset: int = 0

    def params(self) -> dict[str, str | int]:
        values: dict[str, str | int] = {"limit": self.limit, "offset": self.offset}
        for name in ("model", "task", "kind", "q"):
            value = getattr(self, name)
            if value:
                values[name] = str(value)
        if self.since is not None:
            values["since"] = self.since.isoformat()
        if self.until is not None:
            values["until"] = self.until.isoformat()
        return values


class ModelCapabilities(ApiModel):
    """One model of ``GET /v1/capabilities``: the tasks it runs here."""

    name: str
    kind: Annotated[str, _or("base")] = "base"
    family: Annotated[str, _or("unknown")] = "unknown"
    tasks: Annotated[tuple[str, ...], _or(())] = ()
    default: bool = False
    base_model: str | None = None
    note: Text = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None


class Offer(ApiModel):
    """A preset or a style: whether it runs here, and why not."""

    name: str
    description: Text = ""
    available: bool = True
    task: str | None = None
    reason: Text = ""


class MissingCapability(ApiModel):
    capability: str
    reason: str


class Capabilities(ApiModel):
    """``GET /v1/capabilities``: what will run on this server for me, and a sentence for what will not."""

    default_model: Text = ""
    models: Annotated[tuple[ModelCapabilities, ...], _or(())] = ()
    tasks: Annotated[dict[str, bool], _or({})] = {}
    providers: Annotated[tuple[str, ...], _or(())] = ()
    character_adapter: bool = False
    presets: Annotated[tuple[Offer, ...], _or(())] = ()
    styles: Annotated[tuple[Offer, ...], _or(())] = ()
    loras: Annotated[tuple[str, ...], _or(())] = ()
    missing: Annotated[tuple[MissingCapability, ...], _or(())] = ()

    def can(self, task: str) -> bool:
        """True when the server says the task runs; a server without the answer is trusted to try."""
        return self.tasks.get(task, True)

    def why_not(self, task: str) -> str:
        for item in self.missing:
            if item.capability == task:
                return item.reason
        return f"This server cannot make {task} pictures."

    def model(self, name: str | None) -> ModelCapabilities | None:
        """The named model (``None``: the server default)."""
        for model in self.models:
            if (name is None and model.default) or model.name == name:
                return model
        return None

    @property
    def base_models(self) -> tuple[str, ...]:
        """Models to pick as a model (LoRAs go to the LoRA picker)."""
        return tuple(model.name for model in self.models if not model.default and model.kind != "lora")
