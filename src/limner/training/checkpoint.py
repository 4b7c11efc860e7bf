"""Atomic save and load of a run's state, so a killed run resumes exactly where it stopped.

Why this format: tensors go to safetensors and everything else (steps, hyper-parameters, the
shape of nested optimizer state, including its integer keys) to JSON, so loading a checkpoint
never unpickles anything, even for runs started through the API. Why atomic: long runs are killed
at arbitrary moments; a checkpoint is written to a temporary folder and swapped in by rename, so
the folder on disk is always a whole old or a whole new checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from limner.training.ema import EMA

CHECKPOINT_DIR = "checkpoint"
TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"


def _pack(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(value, dict):
        items = []
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise TypeError(f"checkpoint keys must be plain values, not {type(key).__name__}")
            items.append([key, _pack(item, f"{path}/{index}", tensors)])
        return {"__dict__": items}
    if isinstance(value, list | tuple):
        packed = [_pack(item, f"{path}/{index}", tensors) for index, item in enumerate(value)]
        return {"__tuple__": packed} if isinstance(value, tuple) else {"__list__": packed}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__}")


def _unpack(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {key: _unpack(item, tensors) for key, item in value["__dict__"]}
        if "__tuple__" in value:
            return tuple(_unpack(item, tensors) for item in value["__tuple__"])
        if "__list__" in value:
            return [_unpack(item, tensors) for item in value["__list__"]]
    return value


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final, staging, previous = (
        folder / CHECKPOINT_DIR,
        folder / f"{CHECKPOINT_DIR}.tmp",
        folder / f"{CHECKPOINT_DIR}.old",
    )
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _pack(state, "state", tensors)
    save_file(tensors, str(staging / TENSORS_FILE))
    (staging / STATE_FILE).write_text(json.dumps(skeleton), encoding="utf-8")
    shutil.rmtree(previous, ignore_errors=True)
    if final.exists():
        os.replace(final, previous)
    os.replace(staging, final)
    shutil.rmtree(previous, ignore_errors=True)
    return final


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The last whole checkpoint in ``folder`` (or None). A crash mid-swap leaves ``.old``, which is used."""
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        candidate = Path(folder) / name
        if (candidate / STATE_FILE).is_file() and (candidate / TENSORS_FILE).is_file():
            skeleton = json.loads((candidate / STATE_FILE).read_text(encoding="utf-8"))
            state: dict[str, Any] = _unpack(skeleton, load_file(str(candidate / TENSORS_FILE)))
            return state
    return None


def training_state(name: str, module: torch.nn.Module, ema: EMA, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """What a training task's checkpoint holds: the trained module under ``name``, its EMA and the optimizer.

    One definition for every task, so their checkpoints stay alike (``name`` keeps each task's key,
    which checkpoints already on disk use).
    """
    return {name: module.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict()}


def restore_training_state(
    state: dict[str, Any], name: str, module: torch.nn.Module, ema: EMA, optimizer: torch.optim.Optimizer
) -> None:
    """Load what :func:`training_state` saved back into the task's module, EMA and optimizer."""
    module.load_state_dict(state[name])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
