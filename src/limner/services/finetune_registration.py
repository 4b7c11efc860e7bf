"""Put a finished fine-tuning run into the model registry, so ``--model``/``--lora NAME`` uses it at once.

Why in services (not in ``finetune``): registering writes the database and the registry's folder,
which is service work; ``finetune`` only trains and returns where the weights are. The trainer's
types are imported for type checking only, so importing this module does not import torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from limner.db.models import ModelKind, ModelVisibility, RegisteredModel

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from limner.finetune.config import DreamBoothConfig
    from limner.finetune.trainer import FinetuneResult
    from limner.services.models import ModelRegistry


def register_result(
    registry: ModelRegistry,
    session: Session,
    name: str,
    base: str,
    result: FinetuneResult,
    cfg: DreamBoothConfig,
    created_by: str | None = None,
) -> RegisteredModel:
    """Copy the exported weights into the registry's folder and register them under ``name``.

    A LoRA run registers its ``.safetensors`` file (with ``base`` as its base model); a full
    fine-tune registers the whole exported folder. A model trained for a user is private to that user
    (``created_by``) until its owner shares it; one trained on the command line is shared.
    """
    target = registry.managed_folder(name)
    if target.exists():
        shutil.rmtree(target)
    source = result.weights if result.kind == "finetuned" else result.weights.parent
    shutil.copytree(source, target)
    reference = str(target) if result.kind == "finetuned" else str(target / result.weights.name)
    size = sum(path.stat().st_size for path in Path(target).rglob("*") if path.is_file())
    details = {"instance_prompt": cfg.instance_prompt, "steps": result.steps, "rank": cfg.rank,
               "prior_preservation": cfg.prior_preservation, "tokens": result.tokens}  # fmt: skip
    kind = ModelKind.FINETUNED if result.kind == "finetuned" else ModelKind.LORA
    return registry.register(session, name, reference, kind=kind, architecture=result.architecture, base_model=base,
                             managed_path=target, size_bytes=size, details=details, created_by=created_by,
                             visibility=ModelVisibility.PRIVATE if created_by else ModelVisibility.SHARED)  # fmt: skip
