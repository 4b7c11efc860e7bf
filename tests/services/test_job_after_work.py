"""Work a job's answer does not need (the gallery thumbnail) runs after the job's end is published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from limner.core.records import GeneratedImage, ImageRecord
from limner.core.requests import GenerationRequest
from limner.services.files import FileStore
from limner.services.gallery import Gallery
from limner.services.jobs.events import EventBus
from limner.services.jobs.generate import GalleryInputs
from limner.services.jobs.worker import JobContext, Worker
from tests.services.test_queue import enqueue, make_queue, make_user


class RecordingBus(EventBus):
    def __init__(self, order: list[str]) -> None:
        super().__init__()
        self._order = order

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        self._order.append(str(event["status"]))
        super().publish(job_id, event)


def test_after_work_runs_once_the_end_is_published_and_its_failure_spares_the_job(
    sessions: sessionmaker[Session],
) -> None:
    order: list[str] = []

    def handler(context: JobContext) -> list[str]:
        context.after(lambda: order.append("thumbnail"))
        context.after(lambda: 1 / 0)  # logged; the job has succeeded already
        context.after(lambda: order.append("second"))
        order.append("handler returns")
        return []

    worker = Worker(make_queue(sessions), sessions, {"generate": handler}, RecordingBus(order))
    enqueue(worker._queue, sessions, make_user(sessions))
    assert worker.run_once()
    worker.stop()  # waits for the after-work
    assert order == ["running", "handler returns", "succeeded", "thumbnail", "second"]


def generated() -> GeneratedImage:
    request = GenerationRequest(prompt="a fox", seed=3)
    record = ImageRecord(request=request, seed=3, width=64, height=64, model_name="m", limner_version="1")
    return GeneratedImage(image=PILImage.new("RGB", (64, 64), "red"), record=record)


def test_a_deferred_thumbnail_is_written_by_the_task_and_made_on_demand_before(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    files = FileStore(str(tmp_path / "files"))
    gallery = Gallery(files, max_upload_bytes=10_000_000, max_pixels=10_000_000, png_compress_level=1)
    user = make_user(sessions)
    tasks: list[Any] = []
    image = gallery.new_output(user.id, None, generated(), later=tasks.append)
    with sessions() as session:
        session.add(image)
        session.commit()
    assert image.thumbnail_key is not None
    assert files.exists(image.file_key)  # the picture itself is stored before the job may say "succeeded"
    assert not files.exists(image.thumbnail_key)
    assert gallery.thumbnail_bytes(image)[:4] == b"RIFF"  # asked for meanwhile: made from the picture
    [task] = tasks
    task()
    assert files.exists(image.thumbnail_key)


def test_a_request_without_pictures_reads_nothing_from_the_database() -> None:
    opened: list[str] = []

    def sessions() -> Any:
        opened.append("session")
        raise AssertionError("no session was needed")

    inputs = GalleryInputs(None, None, sessions, "owner")  # type: ignore[arg-type]
    assert inputs.task_inputs(GenerationRequest(prompt="a fox")).init_image is None
    assert opened == []
