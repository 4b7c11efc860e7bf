"""The CUDA speed settings, run on the CPU: same pictures tuned or not, LoRAs unfuse, compile keeps classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from limner.config import Settings
from limner.core.requests import GenerationRequest, LoraSpec
from limner.engines.local.device import Placement
from limner.engines.local.engine import LocalEngine
from limner.engines.local.gpu_tuning import QkvFusion, tuning_for


def _engine(tiny_models: dict[str, Path], **overrides: object) -> LocalEngine:
    return LocalEngine(Settings(default_model=str(tiny_models["txt2img"]), device="cpu", _env_file=None,
                                **overrides))  # type: ignore[arg-type]  # fmt: skip


def _pixels(engine: LocalEngine, **fields: object) -> np.ndarray:
    request = GenerationRequest(prompt="a red dot", steps=2, width=64, height=64, seed=5, **fields)  # type: ignore[arg-type]
    return np.asarray(engine.run(request).images[0].image, dtype=np.int16)


def test_cuda_gets_channels_last_and_fused_qkv_by_default_and_the_cpu_nothing() -> None:
    cuda = tuning_for(Placement(torch.device("cuda"), torch.bfloat16), False, None, "inductor")
    assert (cuda.channels_last, cuda.fuse_qkv, cuda.compile) == (True, True, False)
    cpu = tuning_for(Placement(torch.device("cpu"), torch.float32), False, None, "inductor")
    assert not cpu.any


def test_fused_qkv_gives_the_same_pictures_and_lora_runs_unfuse(tiny_models: dict[str, Path]) -> None:
    plain = _engine(tiny_models, fuse_qkv=False)
    fused = _engine(tiny_models, fuse_qkv=True)
    assert QkvFusion(fused.model_slot().pipeline).fused
    lora = [LoraSpec(ref=str(tiny_models["lora"]))]
    assert np.abs(_pixels(plain) - _pixels(fused)).max() <= 1
    with_lora = _pixels(fused, loras=lora)
    assert not QkvFusion(fused.model_slot().pipeline).fused  # the LoRA patches the separate projections
    assert np.abs(with_lora - _pixels(plain, loras=lora)).max() <= 1
    assert np.abs(with_lora - _pixels(fused)).max() > 1  # the LoRA acted
    assert QkvFusion(fused.model_slot().pipeline).fused  # fused again without it


def test_compile_keeps_module_classes_and_pictures(tiny_models: dict[str, Path]) -> None:
    compiled = _engine(tiny_models, compile=True, compile_backend="eager")
    unet = compiled.model_slot().pipeline.unet
    assert type(unet).__name__ == "UNet2DConditionModel"  # from_pipe still sees a UNet
    assert unet._compiled_call_impl is not None
    assert np.abs(_pixels(compiled) - _pixels(_engine(tiny_models))).max() <= 1
