"""Turn a model reference (built-in name, folder, ``.safetensors`` file, hub id) into a source.

Why before loading: every reference problem (a pickle file, a path that does not exist, a
malformed hub id) is reported with a clear message before any weights are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path

from limner.core.errors import ModelNotFoundError, UnsafeModelFormatError
from limner.engines.local.safetensors_check import check_safetensors_file

PICKLE_SUFFIXES = frozenset({".ckpt", ".bin", ".pt", ".pth", ".pkl", ".pickle"})
BUILTIN_CONTROLS = ("limner-tiny-control",)  # a canny ControlNet for limner-tiny (see engines.local.control)
BUILTIN_MODELS = ("limner-tiny", "limner-tiny-edit")
"""Models shipped inside the package: text-to-image (limner-tiny) and instruction edits (limner-tiny-edit)."""
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SourceKind(StrEnum):
    FOLDER = "folder"
    SINGLE_FILE = "single_file"
    HUB = "hub"


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from. ``name`` is what metadata and messages show."""

    kind: SourceKind
    location: str
    name: str
    weight_name: str | None = None


def builtin_model_path(name: str) -> Path:
    """Folder of a model that ships inside the limner package (``limner/weights/<name>``)."""
    return Path(str(resources.files("limner").joinpath("weights", name)))


def resolve_model(ref: str) -> ModelSource:
    """Resolve a base-model reference, refusing pickle formats and unknown paths."""
    if ref in BUILTIN_MODELS:
        folder = builtin_model_path(ref)
        if not (folder / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"the built-in model {ref!r} is not present in this installation of limner "
                f"(expected {folder}); reinstall limner or name another model with --model",
                param="model",
            )
        return ModelSource(SourceKind.FOLDER, str(folder), ref)
    path = _expanded(ref)
    if _is_dir(path):
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{ref} is a folder but not a diffusers model (no model_index.json in it)", param="model"
            )
        return ModelSource(SourceKind.FOLDER, str(path.resolve()), path.name)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeModelFormatError(
            f"{path.name}: {path.suffix} checkpoints are pickles, which can run code when loaded; "
            "limner loads .safetensors only. Convert it, or use the model's safetensors release.",
            param="model",
        )
    if path.suffix.lower() == ".safetensors":
        if not _is_file(path):
            raise ModelNotFoundError(f"no such file: {ref}", param="model")
        check_weights_file(path)
        return ModelSource(SourceKind.SINGLE_FILE, str(path.resolve()), path.stem)
    if _HUB_ID.match(ref) and ".." not in ref:
        return ModelSource(SourceKind.HUB, ref, ref)
    raise ModelNotFoundError(
        f"{ref!r} is neither a built-in model ({', '.join(BUILTIN_MODELS)}), an existing folder or "
        ".safetensors file, nor a hub id like 'owner/name'",
        param="model",
    )


def resolve_lora(ref: str) -> ModelSource:
    """Resolve a LoRA: a ``.safetensors`` file, a folder holding one, or ``owner/repo[/file]`` on the hub."""
    path = _expanded(ref)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeModelFormatError(
            f"LoRA {path.name}: {path.suffix} files are pickles and are refused; use .safetensors",
            param="loras",
        )
    if _is_file(path):
        if path.suffix.lower() != ".safetensors":
            raise UnsafeModelFormatError(f"LoRA {path.name} must be a .safetensors file", param="loras")
        check_weights_file(path, param="loras")
        return ModelSource(SourceKind.SINGLE_FILE, str(path.resolve().parent), path.stem, path.name)
    if _is_dir(path):
        candidates = sorted(path.glob("*.safetensors"))
        if len(candidates) != 1:
            raise ModelNotFoundError(
                f"LoRA folder {ref} must hold exactly one .safetensors file (found {len(candidates)}); "
                "name the file instead",
                param="loras",
            )
        check_weights_file(candidates[0], param="loras")
        return ModelSource(SourceKind.FOLDER, str(path.resolve()), path.name, candidates[0].name)
    parts = ref.split("/")
    if len(parts) >= 2 and _HUB_ID.match("/".join(parts[:2])) and ".." not in ref:
        weight_name = "/".join(parts[2:]) or None
        if weight_name is not None and not weight_name.endswith(".safetensors"):
            raise UnsafeModelFormatError(f"LoRA {ref}: only .safetensors weights are loaded", param="loras")
        return ModelSource(SourceKind.HUB, "/".join(parts[:2]), ref, weight_name)
    raise ModelNotFoundError(
        f"LoRA {ref!r} is neither an existing .safetensors file or folder nor a hub id", param="loras"
    )


def check_weights_file(path: Path, param: str = "model") -> None:
    try:
        check_safetensors_file(path)
    except UnsafeModelFormatError as exc:
        raise UnsafeModelFormatError(exc.message, param=param) from exc


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, but a name the file system cannot even look up (too long, invalid) is no folder."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _expanded(ref: str) -> Path:
    """``~`` expanded; ``~someone`` of an unknown user stays as written (and then resolves to nothing)."""
    try:
        return Path(ref).expanduser()
    except RuntimeError:
        return Path(ref)
