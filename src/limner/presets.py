"""Presets: named bundles of a model, a task and default parameters, kept as data (TOML).

Why data and not code: users add their own presets without touching limner, and the built-ins are
readable by anyone. A preset only fills in what the request leaves unset; the user always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from limner.catalog import load_catalog
from limner.core.errors import InvalidRequestError
from limner.core.requests import GenerationRequest, LoraSpec, SchedulerName, Task

BUILTIN_PRESETS_RESOURCE = "presets.toml"


class Preset(BaseModel):
    """Defaults a preset applies. ``prompt`` is the instruction for edits, or a template with
    ``{prompt}`` for other tasks (``"{prompt}, watercolor"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    task: Task | None = None
    model: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: Annotated[int | None, Field(ge=1)] = None
    guidance_scale: Annotated[float | None, Field(ge=0)] = None
    image_guidance_scale: Annotated[float | None, Field(ge=0)] = None
    strength: Annotated[float | None, Field(gt=0, le=1)] = None
    width: int | None = None
    height: int | None = None
    scheduler: SchedulerName | None = None
    loras: list[LoraSpec] = Field(default_factory=list)

    def apply(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Merge the preset under the user's ``fields`` (keys of :class:`GenerationRequest`)."""
        merged: dict[str, Any] = {
            key: value
            for key, value in self.model_dump(exclude={"name", "description", "prompt"}).items()
            if value not in (None, [])
        }
        merged.update({key: value for key, value in fields.items() if value is not None})
        merged["preset"] = self.name
        user_prompt = str(fields.get("prompt") or "")
        if self.prompt:
            if "{prompt}" in self.prompt:
                merged["prompt"] = self.prompt.replace("{prompt}", user_prompt)
            elif not user_prompt:
                merged["prompt"] = self.prompt
        if self.loras and fields.get("loras"):
            merged["loras"] = [*self.loras, *fields["loras"]]
        return merged


def load_presets(user_file: Path | None = None) -> dict[str, Preset]:
    """Built-in presets, then the user's file on top (same name replaces)."""
    return load_catalog(BUILTIN_PRESETS_RESOURCE, Preset, "preset", "presets_file", user_file)


def request_from_fields(fields: Mapping[str, Any]) -> GenerationRequest:
    """Validate into a request, turning pydantic's error into one message naming the field."""
    try:
        return GenerationRequest.model_validate(dict(fields))
    except ValidationError as exc:
        raise invalid_request_from(exc) from exc


def invalid_request_from(exc: ValidationError) -> InvalidRequestError:
    problem = exc.errors()[0]
    location = ".".join(str(part) for part in problem["loc"])
    message = str(problem["msg"]).removeprefix("Value error, ")
    return InvalidRequestError(message, param=location or None)
