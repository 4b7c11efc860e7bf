"""The handler for generation jobs: load input images from the gallery, run the engine, store results."""

from __future__ import annotations

from limner.core.errors import NotFoundError
from limner.core.requests import GenerationRequest
from limner.db.models import User
from limner.engines.base import Engine, TaskInputs
from limner.services.gallery import Gallery
from limner.services.jobs.worker import JobContext


class GenerateHandler:
    def __init__(self, engine: Engine, gallery: Gallery) -> None:
        self._engine = engine
        self._gallery = gallery

    def __call__(self, context: JobContext) -> list[str]:
        job = context.job
        request = GenerationRequest.model_validate(
            {key: value for key, value in job.request.items() if key in GenerationRequest.model_fields}
        )
        with context.sessions() as session:
            owner = session.get(User, job.owner_id)
            if owner is None:
                raise NotFoundError("the job's owner no longer exists")
            init_id = job.input_image_ids.get("init_image")
            mask_id = job.input_image_ids.get("mask_image")
            inputs = TaskInputs(
                init_image=self._gallery.open_input(session, owner, init_id, "RGB") if init_id else None,
                mask_image=self._gallery.open_input(session, owner, mask_id, "L") if mask_id else None,
            )
        result = self._engine.run(request, inputs, context.progress, context.cancel)
        with context.sessions() as session:
            return [self._gallery.save_output(session, job.owner_id, job.id, item).id for item in result.images]
