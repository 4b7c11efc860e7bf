"""Typed views of the API's JSON answers (users, jobs, progress events, images, server status).

Why dataclasses parsed by hand instead of importing the server's pydantic schemas: the UI is a
client of the REST API only and must keep working against a server of another version; unknown
fields are ignored and missing optional ones get defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FINISHED_STATUSES = frozenset({"succeeded", "failed", "canceled"})


def _datetime(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _error_message(value: Any) -> str | None:
    if isinstance(value, dict) and (value.get("message") or value.get("code")):
        return str(value.get("message") or value.get("code"))
    return None


@dataclass(frozen=True)
class User:
    id: str
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(id=str(data["id"]), username=str(data["username"]), role=str(data.get("role", "user")))


@dataclass(frozen=True)
class Job:
    """A job as ``GET /v1/jobs/{id}`` returns it."""

    id: str
    status: str
    task: str
    model: str | None
    progress: float
    step: int
    total_steps: int
    queue_position: int | None
    result_image_ids: tuple[str, ...]
    error: str | None
    request: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(
            id=str(data["id"]),
            status=str(data.get("status", "queued")),
            task=str(data.get("task", "")),
            model=data.get("model"),
            progress=float(data.get("progress") or 0.0),
            step=int(data.get("step") or 0),
            total_steps=int(data.get("total_steps") or 0),
            queue_position=data.get("queue_position"),
            result_image_ids=tuple(data.get("result_image_ids") or ()),
            error=_error_message(data.get("error")),
            request=dict(data.get("request") or {}),
            created_at=_datetime(data.get("created_at")),
        )


@dataclass(frozen=True)
class JobEvent:
    """One server-sent progress event of a job (the same fields as a job, fewer of them).

    ``preview`` is a base64 PNG of the current step when the server sends one.
    """

    status: str
    step: int = 0
    total_steps: int = 0
    progress: float = 0.0
    result_image_ids: tuple[str, ...] = ()
    error: str | None = None
    preview: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobEvent:
        return cls(
            status=str(data.get("status", "running")),
            step=int(data.get("step") or 0),
            total_steps=int(data.get("total_steps") or 0),
            progress=float(data.get("progress") or 0.0),
            result_image_ids=tuple(data.get("result_image_ids") or ()),
            error=_error_message(data.get("error")),
            preview=data.get("preview") if isinstance(data.get("preview"), str) else None,
        )

    @classmethod
    def of_job(cls, job: Job) -> JobEvent:
        return cls(job.status, job.step, job.total_steps, job.progress, job.result_image_ids, job.error)


@dataclass(frozen=True)
class ImageInfo:
    """A gallery entry (``GET /v1/images`` items)."""

    id: str
    kind: str
    job_id: str | None
    width: int
    height: int
    task: str | None
    model: str | None
    prompt: str
    seed: int | None
    created_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageInfo:
        return cls(
            id=str(data["id"]),
            kind=str(data.get("kind", "output")),
            job_id=data.get("job_id"),
            width=int(data.get("width") or 0),
            height=int(data.get("height") or 0),
            task=data.get("task"),
            model=data.get("model"),
            prompt=str(data.get("prompt") or ""),
            seed=data.get("seed"),
            created_at=_datetime(data.get("created_at")),
        )


@dataclass(frozen=True)
class ImagePage:
    items: tuple[ImageInfo, ...]
    total: int
    limit: int
    offset: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImagePage:
        items = tuple(ImageInfo.from_json(item) for item in data.get("items") or ())
        return cls(items, int(data.get("total") or 0), int(data.get("limit") or 0), int(data.get("offset") or 0))


@dataclass(frozen=True)
class ImageQuery:
    """Filters and paging of the gallery, as query parameters of ``GET /v1/images``."""

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


@dataclass(frozen=True)
class ImageDetails:
    """``GET /v1/images/{id}/metadata``: the gallery entry and every stored parameter."""

    image: ImageInfo
    parameters: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageDetails:
        return cls(ImageInfo.from_json(data["image"]), dict(data.get("parameters") or {}))


@dataclass(frozen=True)
class ServerStatus:
    """What the unauthenticated health endpoints tell: version, readiness, queue numbers."""

    version: str
    ready: bool
    checks: dict[str, str]
    queue_depth: int | None
    jobs_by_status: dict[str, int]
