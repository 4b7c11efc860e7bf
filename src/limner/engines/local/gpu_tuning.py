"""Speed settings for loaded models on CUDA: channels-last memory, fused QKV, TF32, opt-in ``torch.compile``.

Why here and per model: these are the tricks of diffusers' own speed guide ("accelerate inference
of text-to-image diffusion models"), applied once when a model loads, so every task pipeline later
derived from it with ``from_pipe`` runs on the tuned modules.

- channels-last memory for the UNet and VAE (convolutions use the tensor cores' native layout);
- TF32 matmuls on Ampere and newer (fp32 parts such as the VAE, at no visible cost);
- fused QKV projections (one matmul for query, key and value). They change the attention modules,
  which LoRA and IP-Adapter weights patch one projection at a time, so a model is unfused while a
  LoRA or an IP-Adapter is active and fused again afterwards (:class:`QkvFusion`, driven by the
  model slot's gate);
- ``torch.compile`` of the UNet and the VAE decoder, opt-in (``LIMNER_COMPILE=true``): the first
  run at each new shape compiles (minutes on a big model), later runs are faster.
  ``nn.Module.compile`` compiles in place, so the modules keep their classes and ``from_pipe`` works.

On the CPU nothing changes unless asked (the OpenVINO backend is the CPU's fast path); the tests run
the same functions on the CPU with the eager compile backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from limner.engines.local.device import Placement


@dataclass(frozen=True)
class Tuning:
    """What to apply to each loaded model."""

    channels_last: bool = False
    fuse_qkv: bool = False
    compile: bool = False
    compile_mode: str = "max-autotune-no-cudagraphs"
    compile_backend: str = "inductor"

    @property
    def any(self) -> bool:
        return self.channels_last or self.fuse_qkv or self.compile


def tuning_for(placement: Placement, compile_models: bool, fuse_qkv: bool | None, backend: str) -> Tuning:
    """CUDA: channels-last and fused QKV by default, compile when asked; elsewhere only what is asked."""
    on_cuda = placement.device.type == "cuda"
    if on_cuda:
        # Process-wide switches of PyTorch itself; they only matter for fp32 math on CUDA.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return Tuning(
        channels_last=on_cuda,
        fuse_qkv=on_cuda if fuse_qkv is None else fuse_qkv,
        compile=compile_models,
        compile_backend=backend,
    )


def apply_tuning(pipeline: Any, tuning: Tuning) -> list[str]:
    """Tune a freshly loaded pipeline in place; the names of what was applied (for logs and records)."""
    applied: list[str] = []
    unet = getattr(pipeline, "unet", None)
    vae = getattr(pipeline, "vae", None)
    if tuning.channels_last:
        for module in (unet, vae):
            if isinstance(module, torch.nn.Module):
                module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it
        applied.append("channels_last")
    if tuning.fuse_qkv and QkvFusion.supported(pipeline):
        QkvFusion(pipeline).set(True)
        applied.append("fused_qkv")
    if tuning.compile:
        options = {"backend": tuning.compile_backend, "fullgraph": False}
        if tuning.compile_backend == "inductor":
            options["mode"] = tuning.compile_mode
        if isinstance(unet, torch.nn.Module):
            unet.compile(**options)
        decoder = getattr(vae, "decoder", None)
        if isinstance(decoder, torch.nn.Module):
            decoder.compile(**options)
        applied.append(f"compile({tuning.compile_backend})")
    return applied


class QkvFusion:
    """Fuse or unfuse a pipeline's QKV projections (UNet and VAE), knowing which state it is in."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline

    @staticmethod
    def supported(pipeline: Any) -> bool:
        return callable(getattr(pipeline, "fuse_qkv_projections", None))

    @property
    def fused(self) -> bool:
        return bool(getattr(self._pipeline, "fusing_unet", False))  # diffusers' own flag

    def set(self, fused: bool) -> None:
        if fused == self.fused or not self.supported(self._pipeline):
            return
        if fused:
            self._pipeline.fuse_qkv_projections()
        else:
            self._pipeline.unfuse_qkv_projections()
