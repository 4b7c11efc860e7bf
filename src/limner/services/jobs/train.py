"""The handler for training jobs: fine-tune, store validation pictures, register the result.

Why in the same queue as generation: one durable, cancellable, observable mechanism for all long
work. A training run loads its own copy of the base model, so it never touches the weights the
generation engine is serving; a retried job resumes from its checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from limner.core.errors import InvalidRequestError, NotFoundError
from limner.core.jobs import TrainJob, parse_payload
from limner.db.models import User
from limner.engines.local.device import Placement
from limner.finetune.config import DreamBoothConfig
from limner.finetune.dataset import load_subject
from limner.finetune.trainer import run_dreambooth
from limner.services.finetune_registration import register_result
from limner.services.gallery import Gallery
from limner.services.jobs.worker import JobContext
from limner.services.models import ModelRegistry


class TrainHandler:
    def __init__(
        self,
        registry: ModelRegistry,
        gallery: Gallery,
        trainings_dir: Path,
        placement: Placement,
        limits: dict[str, int],
    ) -> None:
        self._registry = registry
        self._gallery = gallery
        self._trainings_dir = trainings_dir
        self._placement = placement
        self._limits = limits

    def run_dir(self, run: str) -> Path:
        """A run's folder (dataset, checkpoints, export); ``run`` is a generated id, never user input."""
        return self._trainings_dir / run

    def __call__(self, context: JobContext) -> list[str]:
        job = context.job
        payload = parse_payload(job.payload)
        if not isinstance(payload, TrainJob):
            raise InvalidRequestError(f"job {job.id} is not a training")
        spec = payload.training
        cfg = DreamBoothConfig.model_validate(spec.config)
        run_dir = self.run_dir(spec.run)
        subject = load_subject(
            run_dir / "dataset",
            classes=cfg.classes_mode,
            max_per_class=cfg.max_images_per_class,
            max_bytes=self._limits["max_bytes"],
            max_pixels=self._limits["max_pixels"],
        )
        image_ids: list[str] = []

        def on_validation(_step: int, path: Path) -> None:
            with context.sessions() as session:
                owner = session.get(User, job.owner_id)
                if owner is not None:
                    image_ids.append(self._gallery.save_upload(session, owner, path.read_bytes()).id)

        result = run_dreambooth(
            spec.base,
            subject,
            cfg,
            run_dir / "work",
            run_dir / "export",
            self._placement,
            progress=context.progress,
            cancel=context.cancel,
            on_validation=on_validation,
        )
        with context.sessions() as session:
            if session.get(User, job.owner_id) is None:
                raise NotFoundError("the training's owner no longer exists")
            register_result(self._registry, session, spec.name, spec.base, result, cfg, created_by=job.owner_id)
        return image_ids
