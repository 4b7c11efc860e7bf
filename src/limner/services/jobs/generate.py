"""The handler for generation jobs: load input images from the gallery, run the engine, store results."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from limner.core.errors import NotFoundError
from limner.core.requests import GenerationRequest
from limner.db.models import User
from limner.engines.base import Engine, TaskInputs
from limner.services.characters import Characters
from limner.services.gallery import Gallery
from limner.services.jobs.worker import JobContext

REFERENCE_PREFIX = "reference_"


class GenerateHandler:
    def __init__(self, engine: Engine, gallery: Gallery, characters: Characters) -> None:
        self._engine = engine
        self._gallery = gallery
        self._characters = characters

    def __call__(self, context: JobContext) -> list[str]:
        job = context.job
        request = GenerationRequest.model_validate(
            {key: value for key, value in job.request.items() if key in GenerationRequest.model_fields}
        )
        with context.sessions() as session:
            owner = session.get(User, job.owner_id)
            if owner is None:
                raise NotFoundError("the job's owner no longer exists")
            inputs = job_inputs(self._gallery, self._characters, session, owner, request, job.input_image_ids)
        result = self._engine.run(request, inputs, context.progress, context.cancel)
        with context.sessions() as session:
            if request.character and result.reference_embeddings:
                self._characters.remember(session, owner, request.character, result.reference_embeddings)
            return [self._gallery.save_output(session, job.owner_id, job.id, item).id for item in result.images]


def job_inputs(
    gallery: Gallery,
    characters: Characters,
    session: Session,
    owner: User,
    request: GenerationRequest,
    image_ids: Mapping[str, str],
) -> TaskInputs:
    """Open a job's input pictures (the owner's own gallery images) and its saved character."""
    init_id = image_ids.get("init_image")
    mask_id = image_ids.get("mask_image")
    references = [image_ids[key] for key in sorted(image_ids) if key.startswith(REFERENCE_PREFIX)]
    pictures = tuple(gallery.open_input(session, owner, image_id, "RGB") for image_id in references)
    weights: tuple[float, ...] | None = None
    embeddings = {}
    if request.character:
        saved = characters.inputs(session, owner, request.character)
        pictures, weights, embeddings = saved.images, tuple(saved.weights), saved.embeddings
    return TaskInputs(
        init_image=gallery.open_input(session, owner, init_id, "RGB") if init_id else None,
        mask_image=gallery.open_input(session, owner, mask_id, "L") if mask_id else None,
        reference_images=pictures,
        reference_weights=weights,
        reference_embeddings=embeddings,
    )
