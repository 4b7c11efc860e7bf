"""Per-model defaults (steps, guidance, size, sampler), kept as data in ``data/model_defaults.toml``.

Why one table: a model's tuned settings used to live in three places that disagreed (the request's
generic defaults, the model card and a preset). The generation service reads them from here only,
fills them under presets, styles and the user's values, and records the result in each image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from limner.catalog import load_catalog
from limner.core.requests import (
    MAX_SIDE,
    MIN_SIDE,
    GenerationRequest,
    SchedulerName,
    Task,
    fewest_denoising_steps,
)

BUILTIN_DEFAULTS_RESOURCE = "model_defaults.toml"


class ModelDefaults(BaseModel):
    """Settings a model was tuned for; ``None`` leaves the request's generic default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    steps: Annotated[int | None, Field(ge=1, le=1000)] = None
    guidance_scale: Annotated[float | None, Field(ge=0, le=50)] = None
    width: Annotated[int | None, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=8)] = None
    height: Annotated[int | None, Field(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=8)] = None
    scheduler: SchedulerName | None = None

    def fill(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``fields`` with this model's values added where they are unset (size only as a pair)."""
        merged = dict(fields)
        for key in ("steps", "guidance_scale", "scheduler"):
            value = getattr(self, key)
            if merged.get(key) is None and value is not None:
                merged[key] = value
        if fields.get("steps") is None and self.steps is not None:
            merged["steps"] = _steps_that_denoise(self.steps, merged)
        if merged.get("width") is None and merged.get("height") is None and self.width and self.height:
            merged["width"], merged["height"] = self.width, self.height
        return merged


_DEFAULT_STRENGTH = float(GenerationRequest.model_fields["strength"].default)


def _steps_that_denoise(steps: int, fields: Mapping[str, Any]) -> int:
    """A model's default steps, raised for a picture task until ``int(steps * strength)`` is at least 1.

    Why: diffusers' img2img and inpaint pipelines run ``int(steps * strength)`` of the steps; a one-step
    model's default (SD-Turbo) would run none at strength 0.75 and fail on an empty batch of latents. Two
    steps at 0.75 run one, as Stability's Turbo img2img example does (2 steps, strength 0.5).
    """
    try:
        task = Task(str(fields.get("task") or Task.TXT2IMG))
    except ValueError:
        return steps  # the request's own check names the bad task
    if not task.takes_strength:
        return steps
    strength = fields.get("strength")
    strength = _DEFAULT_STRENGTH if strength is None else strength
    if not isinstance(strength, int | float) or not 0 < strength <= 1:
        return steps  # the request's own check names the bad strength
    return max(steps, fewest_denoising_steps(strength))


def load_model_defaults(user_file: Path | None = None) -> dict[str, ModelDefaults]:
    """The built-in table (keyed by model reference), with a user's TOML file on top."""
    return load_catalog(BUILTIN_DEFAULTS_RESOURCE, ModelDefaults, "model default", "model_defaults_file", user_file)


def pipeline_arguments(defaults: ModelDefaults) -> dict[str, Any]:
    """The same defaults named as diffusers pipeline arguments (for scripts that call diffusers directly)."""
    names = {"steps": "num_inference_steps", "guidance_scale": "guidance_scale", "width": "width", "height": "height"}
    return {names[key]: value for key, value in defaults.model_dump(include=set(names)).items() if value is not None}
