"""The typed generation request shared by the CLI, the API, the queue and every engine.

Why pydantic: one definition gives validation with field-level messages, JSON for the job queue
and the API schema. Checks that depend on deployment limits (the pixel cap) live in
:meth:`GenerationRequest.check_limits`, because the limits are settings, not constants.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from limner.core.errors import InvalidRequestError

MAX_SEED = 2**32 - 1
SIZE_MULTIPLE = 8
MIN_SIDE = 32
MAX_SIDE = 8192
MAX_IMAGES_PER_REQUEST = 16
MAX_LORAS = 8
MAX_EMBEDDINGS = 8
MAX_REFERENCES = 8
MAX_CONTROLS = 4


class Task(StrEnum):
    """What to do with a model. Every task runs on the same loaded weights."""

    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"
    EDIT = "edit"
    CHARACTER = "character"  # txt2img conditioned on reference pictures (IP-Adapter)
    OUTPAINT = "outpaint"  # inpaint over the picture padded on its sides (``outpaint``); the original is kept
    UPSCALE = "upscale"  # an upscaler model (``upscaler``) enlarges the picture; no diffusion model loads

    @property
    def needs_init_image(self) -> bool:
        return self in (Task.IMG2IMG, Task.INPAINT, Task.EDIT, Task.OUTPAINT, Task.UPSCALE)

    @property
    def inpaints(self) -> bool:
        """Runs the inpainting pipeline with a mask (the user's, or outpainting's own)."""
        return self in (Task.INPAINT, Task.OUTPAINT)

    @property
    def size_from_input(self) -> bool:
        """The output size follows the input picture exactly (so no width/height, and no model default size)."""
        return self in (Task.OUTPAINT, Task.UPSCALE)

    @property
    def needs_mask(self) -> bool:
        return self is Task.INPAINT

    @property
    def takes_strength(self) -> bool:
        """Denoises the input picture from part-way (``strength``): diffusers runs ``int(steps * strength)``."""
        return self in (Task.IMG2IMG, Task.INPAINT, Task.OUTPAINT)


def fewest_denoising_steps(strength: float) -> int:
    """The fewest steps with which a picture task at ``strength`` runs at least one denoising step."""
    steps = math.ceil(1 / strength)
    while int(steps * strength) < 1:  # at most once: float rounding of 1 / strength
        steps += 1
    return steps


class SchedulerName(StrEnum):
    """Sampler names users type; the engine maps each to a diffusers scheduler configuration."""

    EULER = "euler"
    EULER_A = "euler_a"
    DPMPP_2M = "dpm++_2m"
    DPMPP_2M_KARRAS = "dpm++_2m_karras"
    DDIM = "ddim"
    LCM = "lcm"
    UNIPC = "unipc"
    HEUN = "heun"
    PNDM = "pndm"


class DecodeMode(StrEnum):
    """How latents become pixels: the model's own VAE, or a tiny autoencoder that mimics it (faster)."""

    FULL = "full"
    FAST = "fast"


class LoraSpec(BaseModel):
    """One LoRA to apply: a reference (file, folder or hub id) and its weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: Annotated[str, Field(min_length=1, max_length=512)]
    weight: Annotated[float, Field(ge=-4.0, le=4.0)] = 1.0

    @classmethod
    def parse(cls, text: str) -> LoraSpec:
        """Parse the CLI form ``REF`` or ``REF:WEIGHT`` (the weight is after the last colon)."""
        ref, sep, weight = text.rpartition(":")
        if sep and ref and _looks_like_number(weight):
            return cls(ref=ref, weight=float(weight))
        return cls(ref=text)


def _looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


IMAGE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
LEGACY_GALLERY_PREFIX = "image:"


class ImageRef(BaseModel):
    """Where an input picture of a request comes from: a gallery image (API, worker) or a local file (CLI).

    Exactly one of ``image_id`` and ``path`` is set. A plain string is read as a path, and the old
    ``"image:<id>"`` form of stored jobs and PNGs as a gallery id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_id: Annotated[str | None, Field(pattern=IMAGE_ID_PATTERN)] = None
    path: Annotated[str | None, Field(min_length=1, max_length=1024)] = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, str):
            if value.startswith(LEGACY_GALLERY_PREFIX):
                return {"image_id": value.removeprefix(LEGACY_GALLERY_PREFIX)}
            return {"path": value}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.image_id is None) == (self.path is None):
            raise ValueError("an image reference names either image_id or path")
        return self

    @classmethod
    def gallery(cls, image_id: str) -> ImageRef:
        return cls(image_id=image_id)

    @property
    def label(self) -> str:
        """How messages and metadata show it: the file name, or the gallery id."""
        return self.image_id or str(self.path).rsplit("/", 1)[-1]


class ControlType(StrEnum):
    """How a control picture is turned into the ControlNet's / T2I-Adapter's input (its preprocessor)."""

    CANNY = "canny"  # OpenCV Canny edges
    SCRIBBLE = "scribble"  # thick, simplified white strokes on black, like a hand sketch
    LINEART = "lineart"  # thin white lines on black, the lineart ControlNet's convention
    NONE = "none"  # the picture is already a control image (an edge map, depth map, pose skeleton ...)
    DEPTH = "depth"  # a depth map from a depth-estimation model (a setting)
    POSE = "pose"  # needs an OpenPose detector, which limner does not bundle


class ControlSpec(BaseModel):
    """One control: a picture, how it is preprocessed, and the ControlNet or T2I-Adapter that reads it.

    ``start`` and ``end`` are fractions of the denoising steps during which the control acts
    (diffusers' ``control_guidance_start/end``); ``weight`` is its conditioning scale.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: ImageRef
    type: ControlType = ControlType.CANNY
    weight: Annotated[float, Field(ge=0.0, le=4.0)] = 1.0
    model: Annotated[str | None, Field(min_length=1, max_length=512)] = None
    start: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    end: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    canny_low: Annotated[int, Field(ge=0, le=1000)] = 100
    canny_high: Annotated[int, Field(ge=0, le=1000)] = 200

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"a control's start ({self.start:g}) must come before its end ({self.end:g})")
        if self.canny_low > self.canny_high:
            raise ValueError("canny_low must not exceed canny_high")
        return self

    @classmethod
    def parse(cls, text: str, **fields: object) -> ControlSpec:
        """Parse the CLI form ``IMAGE[:TYPE][:WEIGHT]`` (read from the right, so a path may hold colons)."""
        path, values = text, dict(fields)
        head, sep, tail = path.rpartition(":")
        if sep and head and _looks_like_number(tail):
            path, values["weight"] = head, float(tail)
        head, sep, tail = path.rpartition(":")
        if sep and head and tail.lower() in {kind.value for kind in ControlType}:
            path, values["type"] = head, ControlType(tail.lower())
        elif sep and head and tail and "/" not in tail and "\\" not in tail and "." not in tail:
            known = ", ".join(kind.value for kind in ControlType)
            raise ValueError(f"{tail!r} in {text!r} is not a control type (one of {known})")
        return cls.model_validate({"image": ImageRef(path=path), **values})


MAX_OUTPAINT = 2048
MAX_UPSCALE = 8.0
MAX_HIRES_SCALE = 4.0
MAX_TILE = 4096
MIN_TILE = 64
HIRES_LATENT = "latent"
HIRES_LANCZOS = "lanczos"


class OutpaintSpec(BaseModel):
    """How many pixels to add on each side of the picture (grown by up to 7 so the canvas is a multiple of 8)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left: Annotated[int, Field(ge=0, le=MAX_OUTPAINT)] = 0
    right: Annotated[int, Field(ge=0, le=MAX_OUTPAINT)] = 0
    top: Annotated[int, Field(ge=0, le=MAX_OUTPAINT)] = 0
    bottom: Annotated[int, Field(ge=0, le=MAX_OUTPAINT)] = 0

    @model_validator(mode="after")
    def _some_side(self) -> Self:
        if not (self.left or self.right or self.top or self.bottom):
            raise ValueError("outpaint adds nothing: give left, right, top or bottom in pixels")
        return self


def hires_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The final size of a hires-fix run: the base size times ``scale``, down to multiples of 8."""
    return (
        max(SIZE_MULTIPLE, int(width * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE),
        max(SIZE_MULTIPLE, int(height * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE),
    )


class RequestLimits(BaseModel):
    """Deployment limits a request is checked against before any model loads."""

    model_config = ConfigDict(frozen=True)

    max_pixels: int = 2048 * 2048
    max_steps: int = 150
    max_images: int = MAX_IMAGES_PER_REQUEST


class GenerationRequest(BaseModel):
    """Everything needed to reproduce a generation, except the input pictures themselves.

    Input pictures (init image, mask, references) travel beside the request as decoded images; the
    request keeps only an :class:`ImageRef` to each, so it stays small and serialisable.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    task: Task = Task.TXT2IMG
    prompt: Annotated[str, Field(max_length=4000)] = ""
    negative_prompt: Annotated[str, Field(max_length=4000)] = ""
    model: Annotated[str | None, Field(min_length=1, max_length=512)] = None
    width: Annotated[int | None, Field(ge=MIN_SIDE, le=MAX_SIDE)] = None
    height: Annotated[int | None, Field(ge=MIN_SIDE, le=MAX_SIDE)] = None
    steps: Annotated[int, Field(ge=1, le=1000)] = 25
    guidance_scale: Annotated[float, Field(ge=0.0, le=50.0)] = 7.0
    image_guidance_scale: Annotated[float, Field(ge=0.0, le=20.0)] = 1.5
    strength: Annotated[float, Field(gt=0.0, le=1.0)] = 0.75
    seed: Annotated[int | None, Field(ge=0, le=MAX_SEED)] = None
    num_images: Annotated[int, Field(ge=1, le=MAX_IMAGES_PER_REQUEST)] = 1
    scheduler: SchedulerName | None = None
    loras: Annotated[list[LoraSpec], Field(max_length=MAX_LORAS)] = Field(default_factory=list)
    embeddings: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=512)]], Field(max_length=MAX_EMBEDDINGS)
    ] = Field(default_factory=list)
    """Textual-inversion embeddings (.safetensors file, folder or hub id); their words work in the prompts."""
    combinatorial: bool = False
    """With wildcards in the prompt: one image per combination instead of random picks."""
    init_image: ImageRef | None = None
    mask_image: ImageRef | None = None
    preset: Annotated[str | None, Field(max_length=128)] = None
    preview: bool = False
    decode: DecodeMode | None = None  # None: the server's setting (full unless configured)
    reference_images: Annotated[list[ImageRef], Field(max_length=MAX_REFERENCES)] = Field(default_factory=list)
    reference_weights: Annotated[
        list[Annotated[float, Field(gt=0, le=100)]] | None, Field(max_length=MAX_REFERENCES)
    ] = None
    character: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    ip_adapter: Annotated[str | None, Field(min_length=1, max_length=512)] = None
    ip_adapter_scale: Annotated[float, Field(ge=0.0, le=2.0)] = 0.6
    style: Annotated[str | None, Field(max_length=64)] = None
    controls: Annotated[list[ControlSpec], Field(max_length=MAX_CONTROLS)] = Field(default_factory=list)
    outpaint: OutpaintSpec | None = None  # task outpaint: pixels to add on each side
    upscaler: Annotated[str | None, Field(min_length=1, max_length=512)] = None
    """Task upscale: an ESRGAN-family .safetensors file (or hub file) or an SD x4 upscaler (folder or hub id)."""
    upscale_factor: Annotated[float | None, Field(gt=1.0, le=MAX_UPSCALE)] = None  # None: the model's own scale
    tile_size: Annotated[int | None, Field(ge=0, le=MAX_TILE)] = None
    """Input pixels per tile of an upscaler model (None: 512; 0: the whole picture at once)."""
    hires_scale: Annotated[float | None, Field(gt=1.0, le=MAX_HIRES_SCALE)] = None
    """Hires fix: generate at the size, enlarge by this factor, then refine with img2img at the final size."""
    hires_strength: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5  # the refining pass's denoise
    hires_upscaler: Annotated[str, Field(min_length=1, max_length=512)] = HIRES_LATENT
    """How the hires fix enlarges: latent (the latents, bilinear), lanczos (pixels), or an upscaler model."""
    hires_steps: Annotated[int | None, Field(ge=1, le=1000)] = None  # the refining pass's steps (None: steps)
    guess_mode: bool = False  # ControlNets only: follow the control even without a prompt

    @property
    def uses_references(self) -> bool:
        """True when the request is conditioned on reference pictures (IP-Adapter)."""
        return bool(self.reference_images or self.character)

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_eight(cls, value: int | None) -> int | None:
        if value is not None and value % SIZE_MULTIPLE:
            lower = value - value % SIZE_MULTIPLE
            raise ValueError(f"must be a multiple of {SIZE_MULTIPLE} (try {lower} or {lower + SIZE_MULTIPLE})")
        return value

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
            raise ValueError("must not contain control characters")
        return value

    @model_validator(mode="after")
    def _task_inputs(self) -> Self:
        if not self.prompt.strip() and self.task in (Task.TXT2IMG, Task.EDIT, Task.CHARACTER):
            what = "an instruction" if self.task is Task.EDIT else "a prompt"
            raise ValueError(f"{self.task.value} needs {what}: the prompt is empty")
        if self.task.needs_init_image and not self.init_image:
            raise ValueError(f"{self.task.value} needs an input image (init_image)")
        if self.task.needs_mask and not self.mask_image:
            raise ValueError("inpaint needs a mask image (mask_image): white = repaint, black = keep")
        if not self.task.needs_init_image and self.init_image:
            raise ValueError("txt2img takes no init_image; use task img2img")
        if not self.task.needs_mask and self.mask_image:
            raise ValueError(f"{self.task.value} takes no mask_image; use task inpaint")
        if self.task is Task.CHARACTER and not self.uses_references:
            raise ValueError("character needs reference_images or a saved character")
        if self.reference_weights is not None and len(self.reference_weights) != len(self.reference_images):
            raise ValueError(
                f"reference_weights has {len(self.reference_weights)} values for {len(self.reference_images)} images"
            )
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        if self.controls and self.task not in (Task.TXT2IMG, Task.IMG2IMG, Task.INPAINT):
            raise ValueError(f"{self.task.value} takes no controls; controls work with txt2img, img2img and inpaint")
        if self.guess_mode and not self.controls:
            raise ValueError("guess_mode applies to controls; this request has none")
        self._check_denoising_steps()
        self._check_finishing()
        return self

    def _check_denoising_steps(self) -> None:
        """A picture-to-picture task runs ``int(steps * strength)`` steps (diffusers' rule); zero cannot run."""
        if self.task.takes_strength and int(self.steps * self.strength) < 1:
            fewest = fewest_denoising_steps(self.strength)
            raise ValueError(
                f"{self.task.value} runs int(steps x strength) = int({self.steps} x {self.strength}) = 0 denoising "
                f"steps; give at least {fewest} steps or a higher strength"
            )

    def _check_finishing(self) -> None:
        """Outpaint, upscale and hires-fix fields belong to their tasks."""
        if (self.task is Task.OUTPAINT) != (self.outpaint is not None):
            raise ValueError(
                "outpaint needs the outpaint field (pixels to add per side)"
                if self.task is Task.OUTPAINT
                else "the outpaint field belongs to task outpaint"
            )
        if self.task is Task.UPSCALE and not self.upscaler:
            raise ValueError("upscale needs an upscaler model (upscaler: a .safetensors file, folder or hub id)")
        if self.task is not Task.UPSCALE and (self.upscaler or self.upscale_factor):
            raise ValueError("upscaler and upscale_factor belong to task upscale (hires fix: hires_upscaler)")
        if self.task.size_from_input and self.width is not None:
            raise ValueError(f"{self.task.value} takes its size from the input picture; give no width or height")
        if self.task is Task.UPSCALE and self.num_images != 1:
            raise ValueError("upscale makes one picture per request (num_images 1)")
        if self.hires_scale is not None and self.task not in (Task.TXT2IMG, Task.CHARACTER):
            raise ValueError("hires_scale (hires fix) works with txt2img and character; for a picture use upscale")
        if self.tile_size is not None and 0 < self.tile_size < MIN_TILE:
            raise ValueError(f"tile_size is 0 (no tiling) or at least {MIN_TILE} pixels")
        if self.hires_scale is not None and self.controls:
            raise ValueError("hires fix and controls do not combine yet; upscale the controlled picture instead")

    def check_limits(self, limits: RequestLimits) -> None:
        """Reject what this deployment does not allow, naming the field and the limit."""
        if self.width is not None and self.height is not None:
            pixels = self.width * self.height
            if pixels > limits.max_pixels:
                raise InvalidRequestError(
                    f"{self.width}x{self.height} is {pixels} pixels; this server allows at most {limits.max_pixels}",
                    param="size",
                )
            if self.hires_scale is not None:
                width, height = hires_size(self.width, self.height, self.hires_scale)
                if width * height > limits.max_pixels:
                    raise InvalidRequestError(
                        f"the hires fix makes {width}x{height} = {width * height} pixels; this server allows at "
                        f"most {limits.max_pixels} (lower hires_scale or the size)",
                        param="hires_scale",
                    )
        if self.steps > limits.max_steps:
            raise InvalidRequestError(f"at most {limits.max_steps} steps are allowed", param="steps")
        if self.num_images > limits.max_images:
            raise InvalidRequestError(f"at most {limits.max_images} images per request", param="num_images")

    def seeds(self, base_seed: int) -> list[int]:
        """Seed of each image: base, base+1, ... wrapping inside the valid seed range."""
        return [(base_seed + index) % (MAX_SEED + 1) for index in range(self.num_images)]


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` (or a single number for a square) into integers."""
    cleaned = text.lower().replace(" ", "")
    parts = cleaned.split("x")
    try:
        if len(parts) == 1:
            side = int(parts[0])
            return side, side
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise InvalidRequestError(f"{text!r} is not a size; write WIDTHxHEIGHT, e.g. 512x512", param="size")
