"""The form a person fills in, as the JSON body of ``POST /v1/jobs`` — and back from an image.

Why its own module: the Generate, Edit, Character and Prompt lab pages all build job bodies,
and "reuse these settings" turns an image's stored parameters back into the same form. Keeping
both directions here (pure data, no Streamlit) makes them testable without a browser.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

SCHEDULERS = ("euler", "euler_a", "dpm++_2m", "dpm++_2m_karras", "ddim", "lcm", "unipc", "heun", "pndm")
TASKS = ("txt2img", "img2img", "inpaint", "edit")
# Sizes people pick per model family (width x height); the model's own default comes first in the picker.
SIZE_PRESETS: dict[str, tuple[tuple[int, int], ...]] = {
    "sd": ((512, 512), (512, 768), (768, 512), (768, 768)),
    "sdxl": ((1024, 1024), (832, 1216), (1216, 832), (1344, 768), (768, 1344)),
    "flux": ((1024, 1024), (832, 1216), (1216, 832), (1344, 768), (768, 1344)),
    "sd3": ((1024, 1024), (832, 1216), (1216, 832)),
}


def size_presets(family: str, native: tuple[int, int] | None) -> list[str]:
    """Sizes to offer for a model: its own default first, then its family's common ones (``WxH``)."""
    sizes: list[tuple[int, int]] = [native] if native else []
    sizes += [size for size in SIZE_PRESETS.get(family, SIZE_PRESETS["sd"]) if size not in sizes]
    if native and native[0] < 256:  # a small model (limner-tiny): small multiples of its own size
        sizes = [native, (native[0] * 2, native[1] * 2), (native[0] * 4, native[1] * 4)]
    return [f"{width}x{height}" for width, height in sizes]


@dataclass(frozen=True)
class Lora:
    ref: str
    weight: float = 1.0


@dataclass(frozen=True)
class JobSpec:
    """Fields of a generation job; ``None`` means "the server's default"."""

    task: str = "txt2img"
    prompt: str = ""
    negative_prompt: str = ""
    model: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    image_guidance_scale: float | None = None
    strength: float | None = None
    seed: int | None = None
    num_images: int | None = None
    scheduler: str | None = None
    loras: tuple[Lora, ...] = ()
    embeddings: tuple[str, ...] = ()  # textual-inversion embeddings (hub ids or registered names)
    combinatorial: bool = False  # every combination of the prompt's {a|b} choices and wildcards
    preset: str | None = None
    init_image_id: str | None = None
    mask_image_id: str | None = None
    preview: bool = True  # step previews in the progress events (shown while the job runs)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON body: only what was set, so server defaults and presets apply to the rest."""
        values = asdict(self)
        extra = values.pop("extra")
        values["loras"] = [{"ref": lora.ref, "weight": lora.weight} for lora in self.loras]
        values["embeddings"] = list(self.embeddings)
        body = {key: value for key, value in values.items() if value is not False and value not in (None, "", [])}
        body.update(extra)
        return body

    def without_inputs(self) -> JobSpec:
        return replace(self, init_image_id=None, mask_image_id=None)


def parse_loras(text: str) -> tuple[Lora, ...]:
    """One LoRA per line, ``REF`` or ``REF:WEIGHT`` (the weight after the last colon), as the CLI takes."""
    loras = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry:
            continue
        ref, sep, weight = entry.rpartition(":")
        try:
            loras.append(Lora(ref, float(weight)) if sep and ref else Lora(entry))
        except ValueError:
            loras.append(Lora(entry))
    return tuple(loras)


def parse_lines(text: str) -> tuple[str, ...]:
    """One entry per line (embeddings), blank lines skipped."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def format_loras(loras: tuple[Lora, ...]) -> str:
    return "\n".join(f"{lora.ref}:{lora.weight:g}" for lora in loras)


def spec_from_parameters(parameters: dict[str, Any], *, keep_seed: bool = True) -> JobSpec:
    """Rebuild the form from an image's stored parameters (``/metadata``'s ``parameters``).

    The image's own seed (not the batch's first seed) is used with one image, so the same
    settings reproduce exactly this picture; input pictures are not carried over.
    """
    request = dict(parameters.get("request") or {})
    loras = tuple(
        Lora(str(item["ref"]), float(item.get("weight", 1.0)))
        for item in request.get("loras") or ()
        if isinstance(item, dict) and item.get("ref")
    )
    seed = parameters.get("seed", request.get("seed")) if keep_seed else None
    task = str(request.get("task") or "txt2img")
    return JobSpec(
        task=task if task in TASKS else "txt2img",
        prompt=str(request.get("prompt") or ""),
        negative_prompt=str(request.get("negative_prompt") or ""),
        model=request.get("model") or None,
        width=parameters.get("width") or request.get("width"),
        height=parameters.get("height") or request.get("height"),
        steps=request.get("steps"),
        guidance_scale=request.get("guidance_scale"),
        image_guidance_scale=request.get("image_guidance_scale"),
        strength=request.get("strength"),
        seed=int(seed) if seed is not None else None,
        num_images=1,
        scheduler=request.get("scheduler"),
        loras=loras,
        embeddings=tuple(str(ref) for ref in request.get("embeddings") or ()),
    )


def parse_size(text: str) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` or one number for a square; blank means the model's default (``None``).

    Raises ValueError with a sentence for the person; the server checks multiples of 8 and caps.
    """
    cleaned = text.lower().replace(" ", "").replace("×", "x")
    if not cleaned:
        return None
    parts = cleaned.split("x")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise ValueError(f"size {text!r}: write it as WIDTHxHEIGHT, e.g. 512x512") from None
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    raise ValueError(f"size {text!r}: write it as WIDTHxHEIGHT, e.g. 512x512")


def format_size(width: int | None, height: int | None) -> str:
    return f"{width}x{height}" if width and height else ""


def task_for_inputs(has_init: bool, has_mask: bool) -> str:
    """A mask means inpaint, a start picture alone img2img, neither txt2img."""
    if has_mask:
        return "inpaint"
    return "img2img" if has_init else "txt2img"
