"""Atomic save and load of a run's state, so a killed run resumes exactly where it stopped.

Why atomic: long CPU runs are killed (session ends, machine reclaimed) at arbitrary moments; a
checkpoint written to a temporary file and renamed into place is either the old or the new one,
never half of each. This is private training state (optimizer moments included), kept in a
git-ignored work folder; what ships is the safetensors export, not this file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_FILE
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / CHECKPOINT_FILE
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state
