"""How to phrase a request as the ``input`` of a Replicate model.

Why profiles: every Replicate model has its own input schema. The generic profile fits the many
Stable-Diffusion-style models (``width``/``height``, ``num_inference_steps``, ``guidance_scale``,
``image``, ``mask``, ``prompt_strength``); known models that differ get their own entry. Steps and
guidance are sent only when the user set them, so a model's tuned defaults apply otherwise.

Character models take a reference picture (``reference``), how strongly it binds
(``reference_scale``, fed from the request's ``ip_adapter_scale``, i.e. ``--strength``) and a
style chosen from the model's own list (``style`` plus ``style_values``, limner style name ->
the model's value), since a remote model applies its own style LoRA.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from limner.core.requests import Task

SizeField = Literal["width_height", "aspect_ratio"]
FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")


@dataclass(frozen=True)
class ReplicateProfile:
    """Input field names of one model (None: the model has no such input)."""

    size: SizeField = "width_height"
    aspect_ratios: tuple[str, ...] = ()
    negative_prompt: str | None = "negative_prompt"
    steps: str | None = "num_inference_steps"
    guidance: str | None = "guidance_scale"
    image_guidance: str | None = "image_guidance_scale"
    seed: str | None = "seed"
    image: str | None = "image"
    mask: str | None = "mask"
    strength: str | None = "prompt_strength"
    reference: str | None = None
    reference_scale: str | None = None
    style: str | None = None
    style_values: Mapping[str, str] = field(default_factory=dict)
    tasks: frozenset[Task] = frozenset(Task) - {Task.CHARACTER}
    constants: dict[str, Any] = field(default_factory=dict)


GENERIC = ReplicateProfile()

# InstantCharacter (Tencent Hunyuan + InstantX, FLUX.1-dev based): the ``instantcharacter`` preset.
# Field names follow the reference pipeline's arguments (subject_image, subject_scale, 28 steps at
# guidance 3.5) and its two published style LoRAs. A hosted copy under another name, or with other
# field names, is one more entry here.
INSTANTCHARACTER_MODEL = "tencent/instantcharacter"
INSTANTCHARACTER = ReplicateProfile(
    negative_prompt=None,
    image_guidance=None,
    image=None,
    mask=None,
    strength=None,
    reference="subject_image",
    reference_scale="subject_scale",
    style="style",
    style_values=MappingProxyType({"ghibli": "ghibli_style", "makoto": "makoto_shinkai"}),
    tasks=frozenset({Task.CHARACTER}),
    constants={"output_format": "png"},
)

PROFILES: Mapping[str, ReplicateProfile] = MappingProxyType({
    "black-forest-labs/flux-schnell": ReplicateProfile(
        size="aspect_ratio", aspect_ratios=FLUX_RATIOS, negative_prompt=None, guidance=None, image_guidance=None,
        image=None, mask=None, strength=None, tasks=frozenset({Task.TXT2IMG}), constants={"output_format": "png"},
    ),
    "black-forest-labs/flux-dev": ReplicateProfile(
        size="aspect_ratio", aspect_ratios=FLUX_RATIOS, negative_prompt=None, guidance="guidance",
        image_guidance=None, mask=None, tasks=frozenset({Task.TXT2IMG, Task.IMG2IMG}),
        constants={"output_format": "png"},
    ),
    "black-forest-labs/flux-1.1-pro": ReplicateProfile(
        size="aspect_ratio", aspect_ratios=FLUX_RATIOS, negative_prompt=None, steps=None, guidance=None,
        image_guidance=None, image=None, mask=None, strength=None, tasks=frozenset({Task.TXT2IMG}),
        constants={"output_format": "png"},
    ),
    INSTANTCHARACTER_MODEL: INSTANTCHARACTER,
    "stability-ai/sdxl": ReplicateProfile(
        image_guidance=None, tasks=frozenset({Task.TXT2IMG, Task.IMG2IMG, Task.INPAINT})
    ),
})  # fmt: skip


def profile_for(owner_name: str, task: Task = Task.TXT2IMG) -> ReplicateProfile:
    """The profile of ``owner/name`` (any version), or the generic one for ``task``.

    An unknown model asked for a character gets InstantCharacter's input names, so another hosted
    copy of it works with ``--model`` alone.
    """
    known = PROFILES.get(owner_name.lower())
    if known is not None:
        return known
    return INSTANTCHARACTER if task is Task.CHARACTER else GENERIC
