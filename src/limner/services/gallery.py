"""The gallery: every image a user made or uploaded, with its parameters, files and thumbnail.

Why the checks live here: uploads are untrusted (size, format, bombs are checked by
``imaging.inputs``), and stored uploads are re-encoded from pixels so no metadata or trailing
payload of the original survives. Files are stored under generated ids only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from limner.core.errors import InvalidRequestError, NotFoundError
from limner.core.records import GeneratedImage
from limner.db.models import Image, ImageKind, User, new_id
from limner.imaging.inputs import open_image_bytes
from limner.imaging.png import png_bytes, read_parameters
from limner.services.files import FileStore
from limner.services.recent_outputs import RecentOutputs

THUMBNAIL_SIDE = 256


class PictureSize:
    """A stored picture's size, standing in for the decoded picture while a request is only validated."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)


@dataclass(frozen=True)
class ImageFilter:
    model: str | None = None
    task: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    limit: int = 50
    offset: int = 0


class Gallery:
    def __init__(self, files: FileStore, *, max_upload_bytes: int, max_pixels: int, png_compress_level: int) -> None:
        self._files = files
        self._png_compress_level = png_compress_level
        self._recent = RecentOutputs()
        self._max_upload_bytes = max_upload_bytes
        self._max_pixels = max_pixels

    # -- writing ---------------------------------------------------------------------------

    def new_output(
        self,
        owner_id: str,
        job_id: str | None,
        item: GeneratedImage,
        later: Callable[[Callable[[], None]], None] | None = None,
    ) -> Image:
        """Write one generated image's file and make its row, not yet added to any session.

        Why not committed here: a job's images are committed in the transaction that records the job's
        success (:meth:`limner.services.jobs.worker.JobContext.keep_with_success`), so the gallery
        never shows images of a job that then failed or was taken over, and a job costs one commit
        less. The file is written first: once the row is visible, its picture is readable.

        ``later``: the thumbnail is handed to it instead of written here (a worker writes it after the
        job's end is published); until then :meth:`thumbnail_bytes` makes it from the image.
        """
        image_id = new_id()
        record = item.record
        data = png_bytes(item, compress_level=self._png_compress_level)
        row = Image(
            id=image_id,
            owner_id=owner_id,
            kind=ImageKind.OUTPUT.value,
            job_id=job_id,
            index_in_job=record.index if job_id is not None else None,
            width=record.width,
            height=record.height,
            task=record.request.task.value,
            model=record.request.model or record.model_name,
            prompt=record.request.prompt,
            seed=record.seed,
            parameters=record.model_dump(mode="json"),
            **self._write_files(image_id, data, item.image, thumbnail=later is None),
        )
        self._recent.keep(image_id, data)
        if later is not None:
            later(lambda: self._write_thumbnail(row, item.image))
        return row

    def discard_output(self, rows: list[Image]) -> None:
        """Delete the files of images made by :meth:`new_output` whose rows were never committed."""
        for row in rows:
            self._delete_files(row)

    def save_upload(self, session: Session, owner: User, data: bytes, param: str = "image") -> Image:
        """Validate an uploaded picture, strip everything but pixels, and store it."""
        picture = open_image_bytes(
            data, param=param, max_bytes=self._max_upload_bytes, max_pixels=self._max_pixels, mode="RGBA"
        )
        if not _has_transparency(picture):
            picture = picture.convert("RGB")
        clean = io.BytesIO()
        picture.save(clean, format="PNG", compress_level=self._png_compress_level)
        image_id = new_id()
        row = Image(
            id=image_id,
            owner_id=owner.id,
            kind=ImageKind.UPLOAD.value,
            width=picture.width,
            height=picture.height,
            prompt="",
            parameters={},
            **self._write_files(image_id, clean.getvalue(), picture),
        )
        session.add(row)
        session.commit()
        return row

    def import_png(self, session: Session, owner: User, path: Path) -> Image:
        """Bring a PNG written by the CLI into the gallery, keeping its stored parameters."""
        record, a1111 = read_parameters(path)
        data = path.read_bytes()
        picture = open_image_bytes(
            data, param="image", max_bytes=self._max_upload_bytes, max_pixels=self._max_pixels, mode="RGB"
        )
        image_id = new_id()
        prompt = record.request.prompt if record else str((a1111 or {}).get("Prompt", ""))
        row = Image(
            id=image_id,
            owner_id=owner.id,
            kind=ImageKind.IMPORTED.value,
            width=picture.width,
            height=picture.height,
            task=record.request.task.value if record else None,
            model=(record.request.model or record.model_name) if record else None,
            prompt=prompt,
            seed=record.seed if record else None,
            parameters=record.model_dump(mode="json") if record else {"a1111": a1111 or {}},
            **self._write_files(image_id, data, picture),
        )
        session.add(row)
        session.commit()
        return row

    def _write_files(
        self, image_id: str, data: bytes, picture: PILImage.Image, *, thumbnail: bool = True
    ) -> dict[str, str]:
        file_key = _image_key(image_id)
        thumbnail_key = f"thumbnails/{image_id}.webp"
        self._files.put(file_key, data)
        if thumbnail:
            self._files.put(thumbnail_key, _thumbnail(picture))
        return {"file_key": file_key, "thumbnail_key": thumbnail_key}

    def _write_thumbnail(self, image: Image, picture: PILImage.Image) -> None:
        """A deferred thumbnail; none for an image deleted meanwhile (its file is gone)."""
        if image.thumbnail_key and self._files.exists(image.file_key):
            self._files.put(image.thumbnail_key, _thumbnail(picture))

    # -- reading ---------------------------------------------------------------------------

    def get(self, session: Session, user: User, image_id: str) -> Image:
        image = session.get(Image, image_id)
        if image is None or (image.owner_id != user.id and not user.is_admin):
            raise NotFoundError(f"no image {image_id!r}", param="image_id")
        return image

    def list_images(self, session: Session, user: User, filters: ImageFilter) -> tuple[list[Image], int]:
        query = select(Image)
        if not user.is_admin:
            query = query.where(Image.owner_id == user.id)
        if filters.model:
            query = query.where(Image.model == filters.model)
        if filters.task:
            query = query.where(Image.task == filters.task)
        if filters.kind:
            query = query.where(Image.kind == filters.kind)
        if filters.since:
            query = query.where(Image.created_at >= filters.since)
        if filters.until:
            query = query.where(Image.created_at < filters.until)
        if filters.search:
            for word in filters.search.split()[:8]:
                escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                query = query.where(func.lower(Image.prompt).like(f"%{escaped}%", escape="\\"))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Image.created_at.desc(), Image.id).limit(filters.limit).offset(filters.offset)
        ).all()
        return list(rows), total

    def file_bytes(self, image: Image) -> bytes:
        return self._files.get(image.file_key)

    def recent_output_bytes(self, image_id: str) -> bytes | None:
        """A picture this process made a moment ago, from memory, once; None when it is not kept (then
        :meth:`output_bytes` reads its file). See :mod:`limner.services.recent_outputs`."""
        return self._recent.take(image_id)

    def output_bytes(self, image_id: str) -> bytes:
        """The file of an image whose owner the caller already knows (a job's result, by the job's owner),
        without reading its row; a deleted image is a 404."""
        try:
            return self._files.get(_image_key(image_id))
        except FileNotFoundError as exc:
            raise NotFoundError(f"image {image_id!r} was deleted", param="image_id") from exc

    def thumbnail_bytes(self, image: Image) -> bytes:
        if image.thumbnail_key and self._files.exists(image.thumbnail_key):
            return self._files.get(image.thumbnail_key)
        return _thumbnail(PILImage.open(io.BytesIO(self.file_bytes(image))))

    def input_size(self, session: Session, owner: User, image_id: str) -> PictureSize:
        """An input picture's size from its record, without reading or decoding the file (to validate a job)."""
        image = self.get(session, owner, image_id)
        return PictureSize(image.width, image.height)

    def open_input(self, session: Session, owner: User, image_id: str, mode: str) -> PILImage.Image:
        """A gallery image as a job input (the owner's own images only)."""
        image = self.get(session, owner, image_id)
        try:
            picture = PILImage.open(io.BytesIO(self.file_bytes(image)))
            picture.load()
        except (OSError, FileNotFoundError) as exc:
            raise InvalidRequestError(f"image {image_id} cannot be read", param="image_id") from exc
        return picture.convert(mode)

    def delete(self, session: Session, user: User, image_id: str) -> None:
        image = self.get(session, user, image_id)
        session.delete(image)
        session.commit()
        self._delete_files(image)

    def _delete_files(self, image: Image) -> None:
        self._recent.drop(image.id)
        self._files.delete(image.file_key)
        if image.thumbnail_key:
            self._files.delete(image.thumbnail_key)


def _image_key(image_id: str) -> str:
    return f"images/{image_id}.png"


def _thumbnail(picture: PILImage.Image) -> bytes:
    copy = picture.convert("RGBA" if _has_transparency(picture) else "RGB")
    copy.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    buffer = io.BytesIO()
    copy.save(buffer, format="WEBP", quality=85)
    return buffer.getvalue()


def _has_transparency(picture: PILImage.Image) -> bool:
    if picture.mode != "RGBA":
        return False
    low, _high = picture.getchannel("A").getextrema()
    return isinstance(low, int | float) and low < 255
