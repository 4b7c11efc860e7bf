"""The settings of one fine-tuning run, validated before anything loads."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DreamBoothConfig(BaseModel):
    """DreamBooth options. ``instance_prompt`` names the subject with a rare token ("a photo of sks dog");
    in folder-of-classes mode it must contain ``{token}`` (one token per class) and may contain ``{class}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_prompt: Annotated[str, Field(min_length=1, max_length=500)]
    class_prompt: Annotated[str | None, Field(max_length=500)] = None
    prior_preservation: bool = False
    prior_loss_weight: Annotated[float, Field(ge=0, le=10)] = 1.0
    num_class_images: Annotated[int, Field(ge=1, le=1000)] = 50
    classes_mode: bool = False
    max_images_per_class: Annotated[int, Field(ge=1, le=10_000)] = 50
    steps: Annotated[int, Field(ge=1, le=100_000)] = 800
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 1e-4
    rank: Annotated[int, Field(ge=1, le=256)] = 8
    full_finetune: bool = False
    resolution: Annotated[int | None, Field(ge=32, le=2048, multiple_of=8)] = None
    batch_size: Annotated[int, Field(ge=1, le=64)] = 1
    gradient_accumulation: Annotated[int, Field(ge=1, le=64)] = 1
    gradient_checkpointing: bool = False
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    use_8bit_adam: bool = False
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    checkpoint_every: Annotated[int, Field(ge=1)] = 100
    validation_every: Annotated[int, Field(ge=0)] = 0
    validation_prompt: Annotated[str | None, Field(max_length=500)] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.prior_preservation and not self.class_prompt:
            raise ValueError("prior preservation needs a class prompt (e.g. 'a photo of a dog')")
        if self.classes_mode and "{token}" not in self.instance_prompt:
            raise ValueError(
                "in folder-of-classes mode the instance prompt needs {token}, e.g. 'a photo of {token} dog'"
            )
        return self
