"""The handler for generation jobs, and the input source that reads a job's pictures from the gallery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from limner.core.errors import InvalidRequestError, NotFoundError
from limner.core.jobs import GenerateJob, parse_payload
from limner.core.requests import GenerationRequest, ImageRef
from limner.db.models import Job, User
from limner.engines.base import TaskInputs
from limner.services.characters import Characters
from limner.services.gallery import Gallery, PictureSize
from limner.services.generation import GenerationService, api_access
from limner.services.jobs.queue import NewJob
from limner.services.jobs.submission import Submissions
from limner.services.jobs.webhooks import check_webhook_url
from limner.services.jobs.worker import JobContext


class GalleryInputs:
    """A request's pictures are gallery images (and a saved character) of ``owner``; others' are refused."""

    def __init__(
        self, gallery: Gallery, characters: Characters, sessions: sessionmaker[Session], owner_id: str
    ) -> None:
        self._gallery = gallery
        self._characters = characters
        self._sessions = sessions
        self._owner_id = owner_id

    def task_inputs(self, request: GenerationRequest, *, decode: bool = True) -> TaskInputs:
        if not _has_pictures(request):  # most requests: nothing to read, no session to open
            return TaskInputs()
        with self._sessions() as session:
            owner = self._owner(session)
            weights: tuple[float, ...] | None = None
            embeddings: Mapping[str, Any] = {}
            if request.character:
                saved = self._characters.inputs(session, owner, request.character, decode=decode)
                pictures: tuple[Any, ...] = saved.images
                weights, embeddings = tuple(saved.weights), saved.embeddings
            else:
                pictures = tuple(self._picture(session, owner, ref, "RGB", decode) for ref in request.reference_images)
            return TaskInputs(
                init_image=self._picture(session, owner, request.init_image, "RGB", decode),
                mask_image=self._picture(session, owner, request.mask_image, "L", decode),
                reference_images=pictures,
                reference_weights=weights,
                reference_embeddings=embeddings,
                control_images=tuple(
                    self._picture(session, owner, spec.image, "RGB", decode) for spec in request.controls
                ),
            )

    def remember_character(self, name: str, computed: Mapping[str, Any]) -> None:
        with self._sessions() as session:
            self._characters.remember(session, self._owner(session), name, dict(computed))

    def _owner(self, session: Session) -> User:
        owner = session.get(User, self._owner_id)
        if owner is None:
            raise NotFoundError("the job's owner no longer exists")
        return owner

    def _picture(
        self, session: Session, owner: User, ref: ImageRef | None, mode: str, decode: bool
    ) -> PILImage.Image | PictureSize | None:
        if ref is None:
            return None
        if ref.image_id is None:
            raise InvalidRequestError("a job's input pictures are uploads (image ids), not server paths", param="image")
        if not decode:
            return self._gallery.input_size(session, owner, ref.image_id)
        return self._gallery.open_input(session, owner, ref.image_id, mode)


def _has_pictures(request: GenerationRequest) -> bool:
    return bool(request.character or request.init_image or request.mask_image or request.reference_images
                or request.controls)  # fmt: skip


class GenerateHandler:
    """Runs a stored generation job through the generation service and keeps its images in the gallery."""

    def __init__(self, generation: GenerationService, gallery: Gallery, characters: Characters) -> None:
        self._generation = generation
        self._gallery = gallery
        self._characters = characters

    def __call__(self, context: JobContext) -> list[str]:
        job = context.job
        payload = parse_payload(job.payload)
        if not isinstance(payload, GenerateJob):
            raise InvalidRequestError(f"job {job.id} is not a generation")
        source = GalleryInputs(self._gallery, self._characters, context.sessions, job.owner_id)
        result = self._generation.run(payload.request, source, context.progress, context.cancel)
        rows = [self._gallery.new_output(job.owner_id, job.id, item, later=context.after) for item in result.images]
        context.keep_with_success(rows, lambda: self._gallery.discard_output(rows))
        return [row.id for row in rows]


class GenerationJobs:
    """Queue generation jobs for API users: replay, resolve and check, rate limit, store — one path."""

    def __init__(
        self,
        generation: GenerationService,
        gallery: Gallery,
        characters: Characters,
        sessions: sessionmaker[Session],
        submissions: Submissions,
    ) -> None:
        self._generation = generation
        self._gallery = gallery
        self._characters = characters
        self._sessions = sessions
        self._submissions = submissions

    def source(self, owner_id: str) -> GalleryInputs:
        return GalleryInputs(self._gallery, self._characters, self._sessions, owner_id)

    def queue(
        self,
        session: Session,
        user: User,
        fields: Mapping[str, Any],
        preset: str | None = None,
        *,
        idempotency_key: str | None = None,
        webhook_url: str | None = None,
        deadline_seconds: float | None = None,
        job_id: str | None = None,
    ) -> tuple[Job, bool]:
        """Store a validated job for ``fields`` (input pictures as gallery :class:`ImageRef` s); see Submissions.

        ``job_id``: the id to store it under, generated by the caller (see :class:`NewJob`)."""
        existing = self._submissions.replay(session, user, idempotency_key)
        if existing is not None:
            return existing, False
        if webhook_url is not None:
            check_webhook_url(webhook_url, allow_private=self._generation.settings.webhook_allow_private)
        access = api_access(self._generation.settings, user.id, user.is_admin)
        request = self._generation.prepare(fields, preset, self.source(user.id), access)
        new = NewJob(GenerateJob(request=request), idempotency_key, webhook_url, deadline_seconds, job_id)
        return self._submissions.submit(session, user, new)
