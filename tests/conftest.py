"""Shared fixtures: tiny models built from configs, once per test session, loaded like a user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the network
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
torch.set_num_threads(1)  # stable timings and bit-exact outputs on a shared CPU
os.environ.setdefault("LIMNER_THREADS", "1")  # what engines set too
os.environ.setdefault("LIMNER_BACKEND", "torch")  # PyTorch pixels everywhere; OpenVINO tests ask for it

from limner.config import Settings  # noqa: E402
from limner.engines.local.engine import LocalEngine  # noqa: E402
from limner.testing.tiny_models import (  # noqa: E402
    TinyKind,
    build_tiny_ip_adapter,
    build_tiny_lora,
    build_tiny_pipeline,
)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of tiny txt2img, inpaint and edit models, and a LoRA for the txt2img one."""
    root = tmp_path_factory.mktemp("tiny-models")
    folders = {}
    for kind in TinyKind:
        folder = root / f"tiny-{kind.value}"
        build_tiny_pipeline(folder, kind)
        folders[kind.value] = folder
    folders["lora"] = build_tiny_lora(folders["txt2img"], root / "loras" / "tiny-lora.safetensors")
    folders["ip_adapter"] = build_tiny_ip_adapter(folders["txt2img"], root / "ip-adapter")
    return folders


@pytest.fixture(scope="session")
def settings(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        default_model=str(tiny_models["txt2img"]),
        output_dir=tmp_path_factory.mktemp("output"),
        device="cpu",
        max_loaded_models=3,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> LocalEngine:
    """One engine for the session: its model cache keeps test runs fast."""
    return LocalEngine(settings)
