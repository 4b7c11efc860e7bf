"""The gallery's writes for a job's images: kept with the job's success in one commit, or not at all."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from limner.core.errors import InvalidRequestError
from limner.db.models import Image, Job, JobStatus
from limner.services.files import FileStore
from limner.services.gallery import Gallery
from limner.services.jobs.events import EventBus
from limner.services.jobs.worker import JobContext, JobHandler, Worker
from tests.imaging.test_png import zlib_level_class
from tests.services.db_events import engine_events
from tests.services.test_job_after_work import generated
from tests.services.test_queue import enqueue, make_queue, make_user


def make_gallery(tmp_path: Path, png_compress_level: int = 1) -> Gallery:
    return Gallery(FileStore(str(tmp_path / "files")), max_upload_bytes=10_000_000, max_pixels=10_000_000,
                   png_compress_level=png_compress_level)  # fmt: skip


def image_handler(gallery: Gallery, images: int = 2) -> JobHandler:
    """What the generation handler does with a job's images: files written now, rows kept for the job's end."""

    def handler(context: JobContext) -> list[str]:
        items = [generated() for _ in range(images)]
        for index, item in enumerate(items):
            item.record = item.record.model_copy(update={"index": index})
        rows = [gallery.new_output(context.job.owner_id, context.job.id, item, later=context.after) for item in items]
        context.keep_with_success(rows, lambda: gallery.discard_output(rows))
        return [row.id for row in rows]

    return handler


def test_a_jobs_images_and_its_success_are_one_commit(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """Before, the images were committed by themselves and the job's end after: a commit more per job, and a
    moment where the job ran on with images already in the gallery."""
    gallery = make_gallery(tmp_path)
    user = make_user(sessions)
    worker = Worker(make_queue(sessions), sessions, {"generate": image_handler(gallery)}, EventBus())
    job = enqueue(worker._queue, sessions, user)
    with engine_events(sessions, "commit", lambda _connection: "commit") as commits:
        assert worker.run_once()
    worker.stop()
    assert len(commits) == 2  # the claim, then the images with the job's end
    with sessions() as session:
        done = session.get(Job, job.id)
        rows = session.scalars(sa.select(Image).where(Image.job_id == job.id).order_by(Image.index_in_job)).all()
    assert done is not None
    assert done.status == JobStatus.SUCCEEDED.value
    assert sorted(done.result_image_ids) == sorted(row.id for row in rows)
    assert len(rows) == 2
    assert all(gallery.output_bytes(row.id).startswith(b"\x89PNG") for row in rows)


def test_a_job_lost_before_its_end_leaves_neither_image_rows_nor_files(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """A job taken back by the sweeper (its worker seemed dead) is run again elsewhere: this run's images
    are not kept, and their files are deleted."""
    gallery = make_gallery(tmp_path)
    user = make_user(sessions)
    inner = image_handler(gallery)

    def taken_back_meanwhile(context: JobContext) -> list[str]:
        image_ids = inner(context)
        with sessions() as session:
            session.execute(sa.update(Job).where(Job.id == context.job.id).values(status=JobStatus.QUEUED.value,
                                                                                  worker_id=None))  # fmt: skip
            session.commit()
        return image_ids

    worker = Worker(make_queue(sessions), sessions, {"generate": taken_back_meanwhile}, EventBus())
    job = enqueue(worker._queue, sessions, user)
    assert worker.run_once()
    worker.stop()
    with sessions() as session:
        assert session.scalars(sa.select(Image).where(Image.job_id == job.id)).all() == []
        queued = session.get(Job, job.id)
        assert queued is not None
        assert queued.status == JobStatus.QUEUED.value
    images = tmp_path / "files" / "images"
    assert not images.exists() or list(images.iterdir()) == []


def test_a_failed_job_keeps_no_images(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    gallery = make_gallery(tmp_path)
    inner = image_handler(gallery)

    def fails_after_its_images(context: JobContext) -> list[str]:
        inner(context)
        raise InvalidRequestError("made to fail")

    worker = Worker(make_queue(sessions), sessions, {"generate": fails_after_its_images}, EventBus())
    job = enqueue(worker._queue, sessions, make_user(sessions))
    assert worker.run_once()
    worker.stop()
    with sessions() as session:
        failed = session.get(Job, job.id)
        assert failed is not None
        assert failed.status == JobStatus.FAILED.value
        assert session.scalars(sa.select(Image)).all() == []
    images = tmp_path / "files" / "images"
    assert not images.exists() or list(images.iterdir()) == []


def test_a_job_whose_end_could_not_be_announced_keeps_its_images(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The images are committed with the job's success; an event bus that fails afterwards must not
    have their files deleted as if the job had not ended."""

    class BrokenBus(EventBus):
        def publish(self, job_id: str, event: dict[str, object]) -> None:
            if event["status"] == JobStatus.SUCCEEDED.value:
                raise ConnectionError("the bus is away")

    gallery = make_gallery(tmp_path)
    worker = Worker(make_queue(sessions), sessions, {"generate": image_handler(gallery)}, BrokenBus())
    job = enqueue(worker._queue, sessions, make_user(sessions))
    assert worker.run_once()
    worker.stop()
    with sessions() as session:
        rows = session.scalars(sa.select(Image).where(Image.job_id == job.id)).all()
    assert len(rows) == 2
    assert all(gallery.output_bytes(row.id).startswith(b"\x89PNG") for row in rows)


@pytest.mark.parametrize(("level", "flevel"), [(1, 0), (9, 3)])
def test_outputs_and_uploads_are_written_at_the_settings_level(
    sessions: sessionmaker[Session], tmp_path: Path, level: int, flevel: int
) -> None:
    """``LIMNER_PNG_COMPRESS_LEVEL`` reaches both PNGs the gallery encodes (before, both took Pillow's 6)."""
    gallery = make_gallery(tmp_path, png_compress_level=level)
    owner = make_user(sessions)
    output = gallery.new_output(owner.id, None, generated())
    assert zlib_level_class(gallery.output_bytes(output.id)) == flevel
    photo = io.BytesIO()
    PILImage.effect_noise((16, 16), 30).convert("RGB").save(photo, format="PNG", compress_level=6)
    with sessions() as session:
        upload = gallery.save_upload(session, owner, photo.getvalue())
    assert zlib_level_class(gallery.file_bytes(upload)) == flevel
