"""Pick the torch device and dtype: CUDA with bf16/fp16, Apple MPS with fp16, else CPU fp32.

Why automatic with an override: most users never think about it; those who must (a shared GPU,
a card without bf16) set ``LIMNER_DEVICE`` / ``LIMNER_DTYPE``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from limner.core.errors import InvalidRequestError

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype

    @property
    def label(self) -> str:
        return f"{self.device.type}/{str(self.dtype).removeprefix('torch.')}"


def choose_placement(device: str = "auto", dtype: str = "auto") -> Placement:
    """Resolve settings into a device and dtype, refusing a device this machine does not have."""
    chosen = _choose_device(device)
    return Placement(chosen, _choose_dtype(chosen, dtype))


def _choose_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidRequestError("LIMNER_DEVICE=cuda but no CUDA device is available", param="device")
    if device == "mps" and not torch.backends.mps.is_available():
        raise InvalidRequestError("LIMNER_DEVICE=mps but Apple MPS is not available", param="device")
    return torch.device(device)


def _choose_dtype(device: torch.device, dtype: str) -> torch.dtype:
    if dtype != "auto":
        return _DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32
