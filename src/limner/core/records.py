"""What a generation returns: images plus the full record needed to reproduce each of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from limner.core.requests import GenerationRequest


class Timings(BaseModel):
    """Wall-clock seconds spent loading the model and running the pipeline."""

    load_s: float = 0.0
    inference_s: float = 0.0


TUNABLE_FIELDS = frozenset(
    {"negative_prompt", "steps", "guidance_scale", "scheduler", "seed", "strength", "image_guidance_scale",
     "ip_adapter_scale"}
)  # fmt: skip


class ImageRecord(BaseModel):
    """The parameters of one image, as embedded in its PNG and read back by ``limner info``.

    ``request`` holds every user-facing parameter (with defaults resolved); ``seed`` is this
    image's own seed, so re-running the request with it and ``num_images=1`` reproduces the image.
    """

    model_config = ConfigDict(extra="allow")

    request: GenerationRequest
    seed: int
    index: int = 0
    width: int
    height: int
    model_name: str
    pipeline: str = ""
    scheduler: str = ""
    timings: Timings = Field(default_factory=Timings)
    limner_version: str = ""
    ip_adapter: str | None = None
    provider: str = "local"
    revised_prompt: str | None = None
    provider_details: dict[str, Any] = Field(default_factory=dict)
    applied: list[str] | None = None
    """The tunable request fields that took effect (of :data:`TUNABLE_FIELDS`); None: all of them (local
    runs). A remote provider lists only what it was sent, so its image never claims our defaults."""
    character: str | None = None
    reference_count: int = 0
    prompt_template: str | None = None
    """The prompt as written, when it held wildcards or ``{a|b}`` choices; ``request.prompt`` is what ran."""

    def took_effect(self, field: str) -> bool:
        """Whether ``field`` of the request shaped this image (and so belongs in its metadata)."""
        return self.applied is None or field not in TUNABLE_FIELDS or field in self.applied


@dataclass
class GeneratedImage:
    """One output picture (a PIL image) and its record."""

    image: Any
    record: ImageRecord


@dataclass
class GenerationResult:
    """All images of one request, in seed order.

    ``reference_embeddings`` holds IP-Adapter embeddings the engine computed from reference
    pictures (adapter key -> embedding), so a saved character can cache them for later runs.
    """

    images: list[GeneratedImage] = field(default_factory=list)
    reference_embeddings: dict[str, Any] = field(default_factory=dict)
    control_images: list[Any] = field(default_factory=list)
    """The preprocessed control pictures (edges, depth ...) as the ControlNets saw them, one per control."""

    @property
    def seeds(self) -> list[int]:
        return [item.record.seed for item in self.images]
