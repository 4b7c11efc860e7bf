"""The gallery over HTTP: list/search, file, thumbnail, metadata, delete; uploads."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from limner.api.deps import GeneratorDep, ReaderDep, ServicesDep, SessionDep
from limner.api.links import image_links
from limner.api.params import Limit, Offset
from limner.api.responses import AUTHENTICATED, UPLOADS, WITH_BODY, error_responses
from limner.api.schemas import ImageOut, Page
from limner.core.errors import NotFoundError, PermissionDeniedError
from limner.db.models import Image, User
from limner.services.container import Services
from limner.services.gallery import ImageFilter

router = APIRouter(prefix="/v1", tags=["images"], responses=error_responses(AUTHENTICATED))

_PRIVATE_CACHE = {"Cache-Control": "private, max-age=3600"}
MAX_EXPIRES = 2**40  # far past any link's expiry, far below any integer limit


@router.get("/images", response_model=Page[ImageOut], summary="My images, newest first; filter and search")
def list_images(
    user: ReaderDep,
    services: ServicesDep,
    session: SessionDep,
    model: Annotated[str | None, Query(max_length=512)] = None,
    task: Annotated[str | None, Query(max_length=32)] = None,
    kind: Annotated[str | None, Query(max_length=16)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Words that must all appear in the prompt")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ImageOut]:
    filters = ImageFilter(model, task, kind, since, until, q, limit, offset)
    images, total = services.gallery.list_images(session, user, filters)
    return Page[ImageOut](items=[ImageOut.of(image) for image in images], total=total, limit=limit, offset=offset)


@router.get("/images/{image_id}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, **error_responses(404)})  # fmt: skip
def image_file(image_id: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> Response:
    image = services.gallery.get(session, user, image_id)
    return Response(services.gallery.file_bytes(image), media_type="image/png", headers=_PRIVATE_CACHE)


@router.get("/images/{image_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/webp": {}}}, **error_responses(404)})  # fmt: skip
def image_thumbnail(image_id: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> Response:
    image = services.gallery.get(session, user, image_id)
    return Response(services.gallery.thumbnail_bytes(image), media_type="image/webp", headers=_PRIVATE_CACHE)


@router.get("/images/{image_id}/metadata", summary="Every stored parameter of the image",
            responses=error_responses(404))  # fmt: skip
def image_metadata(image_id: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> dict[str, Any]:
    image = services.gallery.get(session, user, image_id)
    return {"image": ImageOut.of(image).model_dump(mode="json"), "parameters": image.parameters}


# Signed links need no credentials, so they live outside the router whose operations all may answer 401.
signed_router = APIRouter(prefix="/v1", tags=["images"])


@signed_router.get(
    "/images/{image_id}/signed",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(400, 403, 404)},
    summary="An image by a signed link (response_format=url); needs no credentials until it expires",
)
def signed_image_file(
    image_id: Annotated[str, Path(max_length=64)],
    expires: Annotated[int, Query(ge=0, le=MAX_EXPIRES, description="Unix seconds the link is valid until")],
    signature: Annotated[str, Query(max_length=128, description="Hex HMAC-SHA256 of the image id and expiry")],
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    if not image_links(services).valid(image_id, expires, signature):
        raise PermissionDeniedError("this image link is invalid or has expired; request the image again for a new link")
    image = session.get(Image, image_id)
    if image is None:
        raise NotFoundError("this image has been deleted", param="image_id")
    headers = {"Cache-Control": f"private, max-age={max(0, expires - int(time.time()))}"}
    return Response(services.gallery.file_bytes(image), media_type="image/png", headers=headers)


@router.delete("/images/{image_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses=error_responses(404))  # fmt: skip
def delete_image(image_id: str, user: GeneratorDep, services: ServicesDep, session: SessionDep) -> Response:
    services.gallery.delete(session, user, image_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/uploads", response_model=ImageOut, status_code=status.HTTP_201_CREATED,
             summary="Upload a PNG, JPEG or WebP picture to use as a job input",
             responses=error_responses(WITH_BODY, UPLOADS))  # fmt: skip
async def upload(file: Annotated[UploadFile, File()], user: GeneratorDep, services: ServicesDep) -> ImageOut:
    data = await file.read()
    return await run_in_threadpool(_store, services, user, data)


def _store(services: Services, user: User, data: bytes) -> ImageOut:
    with services.sessions() as session:
        return ImageOut.of(services.gallery.save_upload(session, user, data, param="file"))
