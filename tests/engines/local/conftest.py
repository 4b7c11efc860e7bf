"""Fixtures of the local engine's tests beyond the shared tiny SD models: a tiny SDXL model."""

from __future__ import annotations

import pytest

from limner.config import Settings
from limner.engines.local.engine import LocalEngine
from tests.engines.local.tiny_sdxl import build_tiny_sdxl


@pytest.fixture(scope="session")
def sdxl_engine(tmp_path_factory: pytest.TempPathFactory) -> LocalEngine:
    """An engine whose default model is a tiny SDXL folder, loaded through the real loading path."""
    folder = tmp_path_factory.mktemp("tiny-sdxl")
    build_tiny_sdxl(folder)
    return LocalEngine(Settings(default_model=str(folder), device="cpu", _env_file=None))  # type: ignore[call-arg]
