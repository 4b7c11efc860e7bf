"""What a model reference declares about itself, without loading weights."""

from __future__ import annotations

import json
from pathlib import Path

from limner.core.errors import InvalidRequestError
from limner.engines.local.model_refs import SourceKind, resolve_model
from limner.engines.local.tasks import EDIT_PIPELINES


def is_edit_model(reference: str) -> bool:
    """True for a local diffusers folder whose ``model_index.json`` names an instruction-edit pipeline."""
    try:
        source = resolve_model(reference)
    except InvalidRequestError:
        return False
    if source.kind is not SourceKind.FOLDER:
        return False
    try:
        declared = json.loads((Path(source.location) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return declared.get("_class_name") in EDIT_PIPELINES
