"""API request and response bodies (the OpenAPI schema at /docs comes from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from limner.core.requests import (
    IMAGE_ID_PATTERN,
    MAX_CONTROLS,
    MAX_HIRES_SCALE,
    MAX_IMAGES_PER_REQUEST,
    MAX_SEED,
    MAX_SIDE,
    MAX_TILE,
    MAX_UPSCALE,
    MIN_SIDE,
    ControlType,
    DecodeMode,
    ImageRef,
    LoraSpec,
    OutpaintSpec,
    SchedulerName,
    Task,
)
from limner.db.models import ApiKey, Character, Image, Job, User

T = TypeVar("T")
ImageId = Annotated[str, Field(pattern=IMAGE_ID_PATTERN, description="An id from POST /v1/uploads or the gallery")]


class ControlIn(BaseModel):
    """One control of a job: an uploaded picture, its preprocessor, and the ControlNet / T2I-Adapter that reads it."""

    model_config = ConfigDict(extra="forbid")

    image_id: ImageId
    type: ControlType = Field(
        default=ControlType.CANNY,
        description="canny, scribble, lineart: edges found by limner; none: the picture is already a control image; "
        "depth: a depth map by the server's depth model; pose: refused (send a skeleton picture with type none)",
    )
    weight: Annotated[float, Field(ge=0, le=4)] = 1.0
    model: Annotated[str, Field(min_length=1, max_length=512)] = Field(
        description="ControlNet or T2I-Adapter: hub id ('owner/name' or 'owner/name/subfolder'), or a registered name"
    )
    start: Annotated[float, Field(ge=0, le=1, description="Fraction of the steps at which it starts")] = 0.0
    end: Annotated[float, Field(ge=0, le=1, description="Fraction of the steps at which it stops")] = 1.0
    canny_low: Annotated[int, Field(ge=0, le=1000)] = 100
    canny_high: Annotated[int, Field(ge=0, le=1000)] = 200

    def spec(self) -> dict[str, Any]:
        """The request's control (checked there: start before end, thresholds in order)."""
        fields = self.model_dump(exclude={"image_id"})
        return {**fields, "image": ImageRef.gallery(self.image_id)}


class JobCreate(BaseModel):
    """A generation job. Input pictures are ids of earlier uploads/images, or multipart files."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prompt": "a lighthouse at dusk, oil painting", "width": 256, "height": 256,
                                         "steps": 4, "seed": 7}]},
    )  # fmt: skip

    task: Task = Task.TXT2IMG
    prompt: Annotated[str, Field(max_length=4000)] = ""
    negative_prompt: Annotated[str, Field(max_length=4000)] = ""
    model: Annotated[str | None, Field(min_length=1, max_length=512)] = None
    width: Annotated[int | None, Field(ge=MIN_SIDE, le=MAX_SIDE)] = None
    height: Annotated[int | None, Field(ge=MIN_SIDE, le=MAX_SIDE)] = None
    steps: Annotated[int | None, Field(ge=1, le=1000)] = None
    guidance_scale: Annotated[float | None, Field(ge=0, le=50)] = None
    image_guidance_scale: Annotated[float | None, Field(ge=0, le=20)] = None
    strength: Annotated[float | None, Field(gt=0, le=1)] = None
    seed: Annotated[int | None, Field(ge=0, le=MAX_SEED)] = None
    num_images: Annotated[int | None, Field(ge=1, le=MAX_IMAGES_PER_REQUEST)] = None
    scheduler: SchedulerName | None = None
    loras: list[LoraSpec] = Field(default_factory=list, max_length=8)
    embeddings: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        default_factory=list, max_length=8,
        description="Textual-inversion embeddings (registered name or hub id; paths for admins); their words then "
        "work in the prompts",
    )  # fmt: skip
    combinatorial: bool | None = Field(
        default=None, description="With {a|b} or __wildcards__ in the prompt: one image per combination"
    )
    preset: Annotated[str | None, Field(max_length=128)] = None
    init_image_id: ImageId | None = None
    mask_image_id: ImageId | None = None
    reference_image_ids: list[ImageId] = Field(default_factory=list, max_length=8)
    reference_weights: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(default=None, max_length=8)
    character: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    ip_adapter: Annotated[str | None, Field(min_length=1, max_length=512)] = None
    ip_adapter_scale: Annotated[float | None, Field(ge=0, le=2)] = None
    style: Annotated[str | None, Field(max_length=64)] = None
    controls: list[ControlIn] = Field(
        default_factory=list, max_length=MAX_CONTROLS, description="Control pictures (ControlNet / T2I-Adapter)"
    )
    guess_mode: bool | None = Field(default=None, description="ControlNets follow the controls even without a prompt")
    preview: bool = Field(
        default=True,
        description="Send a base64 PNG preview with progress events (decoded by the model's decoder "
        "when it is small, at most twice a second; otherwise an approximate thumbnail at every step)",
    )
    decode: DecodeMode | None = Field(default=None, description="fast: a tiny autoencoder decodes (quicker, softer)")
    outpaint: OutpaintSpec | None = Field(
        default=None, description="Task outpaint: pixels to add on each side of init_image_id (the original is kept)"
    )
    upscaler: Annotated[str | None, Field(min_length=1, max_length=512)] = Field(
        default=None,
        description="Task upscale: an ESRGAN-family .safetensors (registered name or owner/repo/file.safetensors) "
        "or an SD x4 upscaler hub id",
    )
    upscale_factor: Annotated[float | None, Field(gt=1, le=MAX_UPSCALE)] = Field(
        default=None, description="Task upscale: how many times larger (default: the model's own scale)"
    )
    tile_size: Annotated[int | None, Field(ge=0, le=MAX_TILE)] = Field(
        default=None, description="Input pixels per upscaler tile (default 512; 0: whole picture)"
    )
    hires_scale: Annotated[float | None, Field(gt=1, le=MAX_HIRES_SCALE)] = Field(
        default=None, description="Hires fix: generate at width x height, enlarge by this, refine with img2img"
    )
    hires_strength: Annotated[float | None, Field(gt=0, le=1)] = Field(
        default=None, description="Hires fix: denoise of the refining pass (default 0.5)"
    )
    hires_upscaler: Annotated[str | None, Field(min_length=1, max_length=512)] = Field(
        default=None, description="Hires fix: latent (default), lanczos, or an upscaler model"
    )
    hires_steps: Annotated[int | None, Field(ge=1, le=1000)] = None
    webhook_url: HttpUrl | None = None
    deadline_seconds: Annotated[float | None, Field(gt=0, le=7 * 24 * 3600)] = None

    def generation_fields(self) -> dict[str, Any]:
        """The request's fields for the generation service; upload ids become gallery image references."""
        fields = self.model_dump(
            exclude={
                "init_image_id",
                "mask_image_id",
                "reference_image_ids",
                "controls",
                "webhook_url",
                "deadline_seconds",
                "preset",
            },
            exclude_none=True,
        )
        if not self.loras:
            fields.pop("loras", None)
        if not self.embeddings:
            fields.pop("embeddings", None)
        if self.init_image_id:
            fields["init_image"] = ImageRef.gallery(self.init_image_id)
        if self.mask_image_id:
            fields["mask_image"] = ImageRef.gallery(self.mask_image_id)
        if self.reference_image_ids:
            fields["reference_images"] = [ImageRef.gallery(image_id) for image_id in self.reference_image_ids]
        if self.controls:
            fields["controls"] = [control.spec() for control in self.controls]
        return fields


class JobError(BaseModel):
    code: str
    message: str


class JobOut(BaseModel):
    id: str
    status: str
    kind: str
    task: str
    model: str | None
    request: dict[str, Any] = Field(description="The generation request, every default resolved")
    training: dict[str, Any] | None = Field(default=None, description="A training job's spec (name, base, config)")
    progress: float
    step: int
    total_steps: int
    queue_position: int | None = None
    result_image_ids: list[str]
    error: JobError | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime | None

    @classmethod
    def of(cls, job: Job, queue_position: int | None = None) -> JobOut:
        error = JobError(code=job.error_code, message=job.error_message or "") if job.error_code else None
        return cls(
            id=job.id, status=job.status, kind=job.kind, task=job.task, model=job.model,
            request=job.payload.get("request", {}), training=job.payload.get("training"),
            progress=job.progress, step=job.step, total_steps=job.total_steps, queue_position=queue_position,
            result_image_ids=list(job.result_image_ids or []), error=error, attempts=job.attempts,
            created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
            deadline_at=job.deadline_at,
        )  # fmt: skip


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ImageOut(BaseModel):
    id: str
    kind: str
    job_id: str | None
    width: int
    height: int
    task: str | None
    model: str | None
    prompt: str
    seed: int | None
    created_at: datetime
    url: str
    thumbnail_url: str

    @classmethod
    def of(cls, image: Image) -> ImageOut:
        return cls(
            id=image.id, kind=image.kind, job_id=image.job_id, width=image.width, height=image.height,
            task=image.task, model=image.model, prompt=image.prompt, seed=image.seed, created_at=image.created_at,
            url=f"/v1/images/{image.id}", thumbnail_url=f"/v1/images/{image.id}/thumbnail",
        )  # fmt: skip


class UserOut(BaseModel):
    id: str
    username: str
    role: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, username=user.username, role=user.role, created_at=user.created_at)


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=2, max_length=63)]
    password: Annotated[str, Field(min_length=8, max_length=1024)]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=128)]
    scopes: list[str] = Field(default_factory=list)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(id=key.id, name=key.name, prefix=key.prefix, scopes=list(key.scopes), created_at=key.created_at,
                   last_used_at=key.last_used_at, revoked_at=key.revoked_at)  # fmt: skip


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. Shown once: store it now.")


class ServerSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registration_open: bool


class CharacterOut(BaseModel):
    id: str
    name: str
    description: str
    reference_image_ids: list[str]
    reference_weights: list[float]
    cached_adapters: list[str]
    created_at: datetime

    @classmethod
    def of(cls, character: Character, cached_adapters: list[str]) -> CharacterOut:
        return cls(id=character.id, name=character.name, description=character.description,
                   reference_image_ids=list(character.reference_image_ids),
                   reference_weights=list(character.reference_weights), cached_adapters=cached_adapters,
                   created_at=character.created_at)  # fmt: skip


class WebhookSecretOut(BaseModel):
    secret: str
    header: str
    scheme: str = "t=<unix seconds>,v1=hex(HMAC-SHA256(secret, '<t>.<raw body>'))"
    standard_secret: str = Field(
        description="The same secret as Standard Webhooks libraries take it (whsec_<base64>): "
        "standardwebhooks.Webhook(standard_secret).verify(body, headers) checks the webhook-* headers"
    )
