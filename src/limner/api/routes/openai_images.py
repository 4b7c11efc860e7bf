"""OpenAI Images API compatibility: generations, edits, variations.

Why: the official ``openai`` client (and tools built on it) work against limner with
``base_url=<limner>/v1`` and a limner API key. Requests go through the same queue as native
jobs. OpenAI model names (``dall-e-2``, ``dall-e-3``, ``gpt-image-1`` ...) map to the server's
default model; any other name is a limner model reference.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from PIL import Image as PILImage
from pydantic import BaseModel, ConfigDict, Field

from limner.api.deps import GeneratorDep, ServicesDep
from limner.api.links import base_url, image_links, signed_image_url
from limner.api.responses import AUTHENTICATED, SYNC_JOB, UPLOADS, WITH_BODY, error_responses
from limner.api.waiting import Finished, submit_and_wait
from limner.core.requests import MAX_IMAGES_PER_REQUEST, ImageRef, Task, parse_size
from limner.db.models import Image, User
from limner.services.container import Services
from limner.services.model_info import is_edit_model

router = APIRouter(
    prefix="/v1/images", tags=["openai-compatible"], responses=error_responses(AUTHENTICATED, WITH_BODY, SYNC_JOB)
)

OPENAI_MODEL_NAMES = frozenset({"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"})
VARIATION_STRENGTH = 0.6
EDIT_STRENGTH = 0.75

ResponseFormat = Literal["url", "b64_json"]


class GenerationsBody(BaseModel):
    """The OpenAI request shape; options limner has no use for (quality, style ...) are accepted."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"prompt": "a lighthouse at dusk", "size": "256x256", "n": 1}]}
    )

    prompt: Annotated[str, Field(min_length=1, max_length=32000)]
    model: Annotated[str | None, Field(max_length=512)] = None
    n: Annotated[int, Field(ge=1, le=MAX_IMAGES_PER_REQUEST)] = 1
    size: Annotated[str | None, Field(max_length=16, description="WIDTHxHEIGHT, e.g. 1024x1024, or auto")] = None
    response_format: ResponseFormat | None = None
    quality: Annotated[str | None, Field(max_length=64)] = None
    style: Annotated[str | None, Field(max_length=64)] = None
    user: Annotated[str | None, Field(max_length=256)] = None


class ImageDatum(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageDatum]


def _model(name: str | None) -> str | None:
    if name is None or name in OPENAI_MODEL_NAMES:
        return None  # the server's default model
    return name


def _size(size: str | None) -> dict[str, int]:
    if size is None or size == "auto":
        return {}
    width, height = parse_size(size)
    return {"width": width, "height": height}


def _run(services: Services, user: User, fields: dict[str, Any], inputs: dict[str, str], job_id: str) -> str:
    pictures = {field: ImageRef.gallery(image_id) for field, image_id in inputs.items()}
    with services.sessions() as session:
        job, _ = services.generation_jobs.queue(session, user, {**fields, **pictures}, job_id=job_id)
        return job.id


def _response(
    services: Services, user: User, job: Finished, response_format: ResponseFormat, base: str
) -> ImagesResponse:
    """The images as base64, or as absolute signed links that work without the API key (as OpenAI's do)."""
    data: list[ImageDatum] = []
    links = image_links(services)
    with services.sessions() as session:
        for image_id in job.result_image_ids or []:
            image = services.gallery.get(session, user, image_id)
            revised = (image.parameters or {}).get("revised_prompt")
            if response_format == "url":
                data.append(ImageDatum(url=signed_image_url(links, base, image.id), revised_prompt=revised))
            else:
                encoded = base64.b64encode(services.gallery.file_bytes(image)).decode()
                data.append(ImageDatum(b64_json=encoded, revised_prompt=revised))
    return ImagesResponse(created=int(time.time()), data=data)


async def _complete(
    services: Services,
    user: User,
    fields: dict[str, Any],
    inputs: dict[str, str],
    response_format: ResponseFormat,
    request: Request,
) -> ImagesResponse:
    async def submit(job_id: str) -> str:
        return await run_in_threadpool(_run, services, user, fields, inputs, job_id)

    finished = await submit_and_wait(services, submit, services.settings.sync_wait_seconds)
    base = base_url(services, request)
    return await run_in_threadpool(_response, services, user, finished, response_format, base)


@router.post("/generations", response_model=ImagesResponse, response_model_exclude_none=True,
             summary="OpenAI-compatible text-to-image")  # fmt: skip
async def generations(
    body: GenerationsBody, user: GeneratorDep, services: ServicesDep, request: Request
) -> ImagesResponse:
    fields: dict[str, Any] = {"task": Task.TXT2IMG.value, "prompt": body.prompt, "num_images": body.n,
                              **_size(body.size)}  # fmt: skip
    if (model := _model(body.model)) is not None:
        fields["model"] = model
    return await _complete(services, user, fields, {}, body.response_format or "b64_json", request)


def _store_upload(services: Services, user: User, data: bytes, param: str) -> Image:
    with services.sessions() as session:
        return services.gallery.save_upload(session, user, data, param=param)


def _mask_from_alpha(services: Services, user: User, data: bytes, param: str) -> str | None:
    """OpenAI masks mark the area to edit as transparent; limner's masks as white. Convert."""
    with PILImage.open(io.BytesIO(data)) as picture:
        if "A" not in picture.getbands():
            return None
        alpha = picture.getchannel("A")
        if alpha.getextrema()[0] == 255:
            return None
        mask = alpha.point(lambda value: 255 if value < 128 else 0).convert("RGB")
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return _store_upload(services, user, buffer.getvalue(), param).id


def _edit_inputs(services: Services, user: User, image: bytes, mask: bytes | None) -> dict[str, str]:
    stored_image = _store_upload(services, user, image, "image")
    inputs = {"init_image": stored_image.id}
    if mask is not None:
        stored_mask = _store_upload(services, user, mask, "mask")
        converted = _mask_from_alpha(services, user, services.gallery.file_bytes(stored_mask), "mask")
        inputs["mask_image"] = converted or stored_mask.id
    else:
        from_image = _mask_from_alpha(services, user, services.gallery.file_bytes(stored_image), "image")
        if from_image is not None:
            inputs["mask_image"] = from_image
    return inputs


def _edit_task(services: Services, model: str | None, has_mask: bool) -> dict[str, Any]:
    """With a mask: inpaint. Without: an instruction edit on edit models, else img2img."""
    if has_mask:
        return {"task": Task.INPAINT.value, "strength": 1.0}
    if is_edit_model(model or services.settings.default_model):
        return {"task": Task.EDIT.value}
    return {"task": Task.IMG2IMG.value, "strength": EDIT_STRENGTH}


@router.post("/edits", response_model=ImagesResponse, response_model_exclude_none=True,
             summary="OpenAI-compatible edit: image + optional mask + prompt",
             responses=error_responses(UPLOADS))  # fmt: skip
async def edits(
    user: GeneratorDep,
    services: ServicesDep,
    request: Request,
    image: Annotated[UploadFile, File()],
    prompt: Annotated[str, Form(min_length=1, max_length=32000)],
    mask: Annotated[UploadFile | None, File()] = None,
    model: Annotated[str | None, Form()] = None,
    n: Annotated[int, Form(ge=1, le=MAX_IMAGES_PER_REQUEST)] = 1,
    size: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat | None, Form()] = None,
) -> ImagesResponse:
    image_bytes = await image.read()
    mask_bytes = await mask.read() if mask is not None else None
    inputs = await run_in_threadpool(_edit_inputs, services, user, image_bytes, mask_bytes)
    chosen = _model(model)
    fields: dict[str, Any] = {"prompt": prompt, "num_images": n, **_size(size),
                              **_edit_task(services, chosen, "mask_image" in inputs)}  # fmt: skip
    if chosen is not None:
        fields["model"] = chosen
    return await _complete(services, user, fields, inputs, response_format or "b64_json", request)


@router.post("/variations", response_model=ImagesResponse, response_model_exclude_none=True,
             summary="OpenAI-compatible variations of an image", responses=error_responses(UPLOADS))  # fmt: skip
async def variations(
    user: GeneratorDep,
    services: ServicesDep,
    request: Request,
    image: Annotated[UploadFile, File()],
    model: Annotated[str | None, Form()] = None,
    n: Annotated[int, Form(ge=1, le=MAX_IMAGES_PER_REQUEST)] = 1,
    size: Annotated[str | None, Form()] = None,
    response_format: Annotated[ResponseFormat | None, Form()] = None,
) -> ImagesResponse:
    data = await image.read()
    stored = await run_in_threadpool(_store_upload, services, user, data, "image")
    fields: dict[str, Any] = {"task": Task.IMG2IMG.value, "prompt": "", "num_images": n,
                              "strength": VARIATION_STRENGTH, **_size(size)}  # fmt: skip
    if (chosen := _model(model)) is not None:
        fields["model"] = chosen
    return await _complete(services, user, fields, {"init_image": stored.id}, response_format or "b64_json", request)
