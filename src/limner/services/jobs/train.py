"""The handler for training jobs: fine-tune, store validation pictures, register the result.

Why in the same queue as generation: one durable, cancellable, observable mechanism for all long
work. A training run loads its own copy of the base model, so it never touches the weights the
generation engine is serving; a retried job resumes from its checkpoints.

Why through the file store: the worker that trains may be another machine than the API process that
took the upload. The uploaded zip is kept in the shared file store under the run's id; a worker
without the unpacked pictures unpacks them from there, and the registered result is packed back
into the file store by the model registry (see ``services/model_files.py``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from limner.config import Settings
from limner.core.errors import InvalidRequestError, NotFoundError
from limner.core.jobs import TrainingSpec, TrainJob, parse_payload
from limner.db.models import Job, User, new_id
from limner.finetune.config import DreamBoothConfig
from limner.finetune.dataset import extract_zip
from limner.services.files import FileStore
from limner.services.gallery import Gallery
from limner.services.generation import GenerationService, ModelLookup, api_access
from limner.services.jobs.queue import NewJob
from limner.services.jobs.submission import Submissions
from limner.services.jobs.worker import JobContext
from limner.services.models import ModelRegistry
from limner.services.training import TrainingRun, check_dataset, train_and_register


class TrainHandler:
    """Runs a stored training job through :func:`train_and_register`; validation pictures go to the gallery."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        lookup: ModelLookup,
        gallery: Gallery,
        sessions: sessionmaker[Session],
        trainings_dir: Path,
        files: FileStore,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._lookup = lookup
        self._gallery = gallery
        self._sessions = sessions
        self._trainings_dir = trainings_dir
        self._files = files

    def run_dir(self, run: str) -> Path:
        """A run's folder (dataset, checkpoints, export); ``run`` is a generated id, never user input."""
        return self._trainings_dir / run

    def __call__(self, context: JobContext) -> list[str]:
        job = context.job
        payload = parse_payload(job.payload)
        if not isinstance(payload, TrainJob):
            raise InvalidRequestError(f"job {job.id} is not a training")
        spec = payload.training
        run_dir = self.run_dir(spec.run)
        image_ids: list[str] = []

        def on_validation(_step: int, path: Path) -> None:
            with context.sessions() as session:
                owner = session.get(User, job.owner_id)
                if owner is not None:
                    image_ids.append(self._gallery.save_upload(session, owner, path.read_bytes()).id)

        with context.sessions() as session:
            if session.get(User, job.owner_id) is None:
                raise NotFoundError("the training's owner no longer exists")
        run = TrainingRun(
            name=spec.name, base=spec.base, config=DreamBoothConfig.model_validate(spec.config),
            dataset=self._dataset(spec.run, run_dir), work_dir=run_dir / "work", created_by=job.owner_id,
        )  # fmt: skip
        train_and_register(
            self._settings, self._registry, self._lookup, self._sessions, run,
            progress=context.progress, cancel=context.cancel, on_validation=on_validation,
        )  # fmt: skip
        self._files.delete(dataset_key(spec.run))
        return image_ids

    def _dataset(self, run: str, run_dir: Path) -> Path:
        """The run's pictures: unpacked here already (the API's machine), else from the file store."""
        folder = run_dir / "dataset"
        if not folder.is_dir():
            key = dataset_key(run)
            if not self._files.exists(key):
                raise NotFoundError("the training's pictures are gone from the file store")
            staging = run_dir / "dataset.zip"
            run_dir.mkdir(parents=True, exist_ok=True)
            staging.write_bytes(self._files.get(key))
            extract_zip(staging, folder, max_total_bytes=self._settings.max_request_bytes * 40)
        return folder


def dataset_key(run: str) -> str:
    """The file-store key of a training run's uploaded zip (``run`` is a generated id)."""
    return f"trainings/{run}.zip"


class TrainingJobs:
    """Queue training jobs for API users: check the name and base, unpack and check the pictures, then store the job.

    The dataset is unpacked into the run's folder before the job is stored, so a worker never claims
    a job without its data; anything refused leaves no folder behind.
    """

    def __init__(
        self,
        settings: Settings,
        generation: GenerationService,
        submissions: Submissions,
        registry: ModelRegistry,
        trainings_dir: Path,
        files: FileStore,
    ) -> None:
        self._settings = settings
        self._generation = generation
        self._submissions = submissions
        self._registry = registry
        self._trainings_dir = trainings_dir
        self._files = files

    def queue(
        self, session: Session, user: User, name: str, base: str | None, config: DreamBoothConfig, archive: bytes
    ) -> Job:
        self._registry.check_name(session, name)
        request = self._generation.prepare(
            {"prompt": config.instance_prompt, "model": base, "steps": min(config.steps, 1000)},
            access=api_access(self._settings, user.id, user.is_admin),
        )
        run = new_id()
        run_dir = self._trainings_dir / run
        try:
            run_dir.mkdir(parents=True)
            (run_dir / "dataset.zip").write_bytes(archive)
            extract_zip(
                run_dir / "dataset.zip", run_dir / "dataset", max_total_bytes=self._settings.max_request_bytes * 40
            )
            check_dataset(self._settings, run_dir / "dataset", config)
            # The base actually trained on: the server's default model when none was named.
            spec = TrainingSpec(name=name, base=str(request.model), config=config.model_dump(mode="json"), run=run)
            self._files.put(dataset_key(run), archive)  # for a worker on another machine
            job, _ = self._submissions.submit(session, user, NewJob(TrainJob(request=request, training=spec)))
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            self._files.delete(dataset_key(run))
            raise
        return job
