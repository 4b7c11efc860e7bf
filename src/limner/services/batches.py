"""Batches over the API: ideas become one queued job each; the result is a zip of folders.

Why jobs: every item then has the queue's guarantees (durable, retried, cancellable, its own
progress), and a failed item fails alone. The zip has the same layout as ``limner batch``: one
folder per idea with its images, ``info.md`` and ``info.json``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from limner.batch.info import INFO_JSON, INFO_MD, info_markdown, item_info
from limner.batch.plan import BatchItem, BatchOptions, item_fields
from limner.batch.slugs import unique_slug
from limner.core.errors import NotFoundError, QueueFullError
from limner.core.jobs import GenerateJob
from limner.core.records import ImageRecord
from limner.db.models import Batch, Image, Job, JobStatus, User
from limner.prompts.ideas import PromptIdea
from limner.services.gallery import Gallery
from limner.services.generation import GenerationService, api_access
from limner.services.jobs.queue import QUEUE_FULL_RETRY_SECONDS, JobQueue, NewJob


class Batches:
    def __init__(self, queue: JobQueue, gallery: Gallery, generation: GenerationService, max_queued: int) -> None:
        self._queue = queue
        self._gallery = gallery
        self._generation = generation
        self._max_queued = max_queued

    def create(
        self, session: Session, owner: User, ideas: list[PromptIdea], options: BatchOptions, theme: str, source: str
    ) -> Batch:
        """Validate every item, check the queue has room for all, then enqueue one job per idea."""
        taken: set[str] = set()
        planned: list[tuple[BatchItem, Any]] = []
        for index, idea in enumerate(ideas):
            folder = unique_slug(idea.title, taken)
            taken.add(folder)
            item = BatchItem(index=index, idea=idea, folder=folder)
            access = api_access(self._generation.settings, owner.id, owner.is_admin)
            planned.append((item, self._generation.prepare(item_fields(item, options), access=access)))
        waiting = self._queue.queued_count(session)
        if waiting + len(planned) > self._max_queued:
            room = max(0, self._max_queued - waiting)
            message = f"the queue has room for {room} more jobs; this batch needs {len(planned)}"
            raise QueueFullError(message, retry_after=QUEUE_FULL_RETRY_SECONDS)
        items: list[dict[str, Any]] = []
        for item, request in planned:
            job, _ = self._queue.enqueue(session, owner, NewJob(GenerateJob(request=request)))
            items.append({"index": item.index, "folder": item.folder, "idea": item.idea.model_dump(), "job_id": job.id})
        batch = Batch(owner_id=owner.id, theme=theme, source=source, options=options.model_dump(mode="json"),
                      items=items)  # fmt: skip
        session.add(batch)
        session.commit()
        return batch

    def get(self, session: Session, user: User, batch_id: str) -> Batch:
        batch = session.get(Batch, batch_id)
        if batch is None or (batch.owner_id != user.id and not user.is_admin):
            raise NotFoundError(f"no batch {batch_id!r}", param="batch_id")
        return batch

    def list_batches(self, session: Session, user: User, limit: int, offset: int) -> list[Batch]:
        query = select(Batch).where(Batch.owner_id == user.id).order_by(Batch.created_at.desc(), Batch.id)
        return list(session.scalars(query.limit(limit).offset(offset)).all())

    def jobs(self, session: Session, batch: Batch) -> dict[str, Job]:
        job_ids = [item["job_id"] for item in batch.items]
        return {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(job_ids))).all()}

    def progress(self, session: Session, batch: Batch) -> dict[str, Any]:
        jobs = self.jobs(session, batch)
        counts = Counter(jobs[item["job_id"]].status for item in batch.items if item["job_id"] in jobs)
        finished = sum(counts[status.value] for status in JobStatus if status.finished)
        return {
            "total": len(batch.items),
            "finished": finished,
            "by_status": {status.value: counts.get(status.value, 0) for status in JobStatus},
            "done": finished == len(batch.items),
        }

    def zip_bytes(self, session: Session, user: User, batch: Batch) -> bytes:
        """A zip of the finished items: ``<folder>/<images>``, ``info.md``, ``info.json``; plus ``batch.json``."""
        jobs = self.jobs(session, batch)
        buffer = io.BytesIO()
        summary: list[dict[str, Any]] = []
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for item in batch.items:
                job = jobs.get(item["job_id"])
                status = job.status if job else "missing"
                summary.append({"index": item["index"], "folder": item["folder"], "status": status,
                                "error": job.error_message if job else None})  # fmt: skip
                if job is None or job.status != JobStatus.SUCCEEDED.value:
                    continue
                images: list[tuple[str, ImageRecord]] = []
                for number, image_id in enumerate(job.result_image_ids or [], start=1):
                    image = session.get(Image, image_id)
                    if image is None:
                        continue
                    name = f"{number:05d}-{image.seed}.png"
                    archive.writestr(f"{item['folder']}/{name}", self._gallery.file_bytes(image))
                    images.append((name, ImageRecord.model_validate(image.parameters)))
                info = item_info(PromptIdea.model_validate(item["idea"]), images, batch_id=batch.id,
                                 index=item["index"])  # fmt: skip
                archive.writestr(f"{item['folder']}/{INFO_JSON}", json.dumps(info, indent=2, ensure_ascii=False))
                archive.writestr(f"{item['folder']}/{INFO_MD}", info_markdown(info))
            overview = {"batch_id": batch.id, "theme": batch.theme, "source": batch.source, "items": summary}
            archive.writestr("batch.json", json.dumps(overview, indent=2, ensure_ascii=False))
        return buffer.getvalue()
