"""Fine-tuning as a service: load and check the pictures, train, register the result.

Why one function for the CLI and the queue worker: ``limner train dreambooth`` and ``POST
/v1/trainings`` used to each load the dataset, pick the device, run the trainer and register the
weights in their own way. Both now call :func:`train_and_register`; only where the pictures come
from (a local folder or zip, an uploaded zip unpacked in the run folder) and where validation
pictures go (the terminal, the gallery) differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from limner.config import Settings
from limner.core.progress import CancelToken, ProgressCallback, ignore_progress
from limner.db.models import RegisteredModel
from limner.engines.local.device import choose_placement
from limner.finetune.config import DreamBoothConfig
from limner.finetune.dataset import SubjectImages, load_subject
from limner.finetune.trainer import FinetuneResult, run_dreambooth
from limner.services.finetune_registration import register_result
from limner.services.generation import ModelLookup
from limner.services.models import ModelRegistry


@dataclass(frozen=True)
class TrainingRun:
    """One fine-tuning: what to register, on which base, with which settings, in which folders."""

    name: str
    base: str
    config: DreamBoothConfig
    dataset: Path
    work_dir: Path
    created_by: str | None = None


def check_dataset(settings: Settings, dataset: Path, config: DreamBoothConfig) -> SubjectImages:
    """Open every picture of the dataset with the upload limits (before a job is queued, and again to train)."""
    return load_subject(
        dataset,
        classes=config.classes_mode,
        max_per_class=config.max_images_per_class,
        max_bytes=settings.max_input_image_bytes,
        max_pixels=settings.max_pixels,
    )


def train_and_register(
    settings: Settings,
    registry: ModelRegistry,
    lookup: ModelLookup,
    session_factory: Callable[[], Session],
    run: TrainingRun,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    on_validation: Callable[[int, Path], None] | None = None,
    show_progress: bool = False,
) -> tuple[RegisteredModel, FinetuneResult]:
    """Train ``run`` (resuming from its work folder's checkpoints) and register the weights under its name.

    A registered base name is trained on its weights; the result records the name the user gave.
    """
    subject = check_dataset(settings, run.dataset, run.config)
    entry = lookup(run.base)
    weights = run.base
    if entry is not None and not entry.is_lora:
        weights = registry.files.local_reference(entry) if registry.files is not None else entry.reference
    result = run_dreambooth(
        weights,
        subject,
        run.config,
        run.work_dir,
        run.work_dir / "export",
        choose_placement(settings.device, settings.dtype),
        progress=progress,
        cancel=cancel,
        on_validation=on_validation,
        show_progress=show_progress,
    )
    with session_factory() as session:
        model = register_result(registry, session, run.name, run.base, result, run.config, created_by=run.created_by)
    return model, result
