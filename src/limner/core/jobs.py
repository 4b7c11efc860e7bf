"""Typed job payloads: what a queued job asks for, one pydantic model per job kind.

Why a discriminated union: a job row used to hold one JSON column in two shapes (a generation
request, with a training spec merged into it for trainings). Now the row's ``payload`` is exactly
one of these models, chosen by ``kind``, and the worker's handlers receive the typed object.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from limner.core.requests import GenerationRequest


class GenerateJob(BaseModel):
    """Make images. The request's :class:`~limner.core.requests.ImageRef` s name its input pictures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["generate"] = "generate"
    request: GenerationRequest


class TrainingSpec(BaseModel):
    """A fine-tuning run: the name to register, its base model, the trainer's config, its run folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    base: Annotated[str, Field(min_length=1, max_length=512)]
    config: dict[str, Any]
    run: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class TrainJob(BaseModel):
    """Fine-tune a model; ``request`` is the prompt/model of its validation pictures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["train"] = "train"
    request: GenerationRequest
    training: TrainingSpec


JobPayload = Annotated[GenerateJob | TrainJob, Field(discriminator="kind")]
JOB_PAYLOAD: TypeAdapter[GenerateJob | TrainJob] = TypeAdapter(JobPayload)
JobKind = Literal["generate", "train"]


def parse_payload(stored: dict[str, Any]) -> GenerateJob | TrainJob:
    """A stored payload back as its typed model."""
    return JOB_PAYLOAD.validate_python(stored)
