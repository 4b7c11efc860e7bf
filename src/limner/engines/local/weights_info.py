"""What a weights folder or file is (a base model or a LoRA, and which family), from headers only.

Why headers: importing a multi-gigabyte model must not read it; the safetensors header names every
tensor, and a diffusers folder names its pipeline in ``model_index.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from limner.core.errors import InvalidRequestError, UnsafeModelFormatError
from limner.engines.local.model_refs import PICKLE_SUFFIXES
from limner.engines.local.safetensors_check import check_safetensors_file

_FAMILIES = (
    ("XL", "sdxl"),
    ("Flux", "flux"),
    ("StableDiffusion3", "sd3"),
    ("InstructPix2Pix", "sd-instruct-pix2pix"),
    ("StableDiffusion", "sd"),
)
_LORA_MARKERS = ("lora_", ".lora.", "lora_A", "lora_B", "lora_up", "lora_down")


@dataclass(frozen=True)
class WeightsInfo:
    kind: str  # "base" or "lora"
    architecture: str
    size_bytes: int


def describe_weights(path: Path) -> WeightsInfo:
    """Check every weights file (safetensors only) and say what ``path`` holds."""
    if path.is_dir():
        return _describe_folder(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsafeModelFormatError(f"{path.name}: pickle weights are refused; use .safetensors", param="path")
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        raise InvalidRequestError(f"{path} is neither a diffusers folder nor a .safetensors file", param="path")
    header = check_safetensors_file(path)
    keys = [key for key in header if key != "__metadata__"]
    if any(marker in key for key in keys for marker in _LORA_MARKERS):
        return WeightsInfo("lora", _lora_family(keys), path.stat().st_size)
    from limner.engines.local.loading import single_file_pipeline_class

    return WeightsInfo("base", _family(single_file_pipeline_class(path).__name__), path.stat().st_size)


def _describe_folder(folder: Path) -> WeightsInfo:
    index = folder / "model_index.json"
    if not index.is_file():
        raise InvalidRequestError(f"{folder} has no model_index.json: not a diffusers model folder", param="path")
    try:
        class_name = str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
    except (OSError, ValueError) as exc:
        raise InvalidRequestError(f"{index} is not valid JSON", param="path") from exc
    weights = sorted(folder.rglob("*.safetensors"))
    if not weights:
        raise UnsafeModelFormatError(f"{folder} has no safetensors weights (pickle weights are refused)", param="path")
    for file in weights:
        check_safetensors_file(file)
    size = sum(file.stat().st_size for file in folder.rglob("*") if file.is_file())
    return WeightsInfo("base", _family(class_name), size)


def _family(class_name: str) -> str:
    for marker, family in _FAMILIES:
        if marker in class_name:
            return family
    return class_name or "unknown"


def _lora_family(keys: list[str]) -> str:
    if any("transformer" in key for key in keys):
        return "flux-or-dit"
    if any("text_encoder_2" in key or "te2" in key for key in keys):
        return "sdxl"
    return "sd"
