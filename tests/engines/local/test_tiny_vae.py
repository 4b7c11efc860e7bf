"""Fast decoding: a tiny autoencoder in place of the VAE, chosen by family or by setting; told when none fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.requests import GenerationRequest
from limner.engines.local.engine import LocalEngine
from limner.engines.local.tiny_vae import model_family
from limner.testing.tiny_models import build_tiny_taesd


def engine_for(model: Path, **settings: object) -> LocalEngine:
    return LocalEngine(Settings(default_model=str(model), device="cpu", _env_file=None, **settings))  # type: ignore[call-arg, arg-type]


def test_fast_decoding_uses_the_tiny_autoencoder(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    engine = engine_for(tiny_models["txt2img"], tiny_vae=str(build_tiny_taesd(tmp_path / "taesd")))
    request = GenerationRequest(prompt="a fox", steps=2, seed=3, width=64, height=64)
    full = engine.run(request).images[0]
    fast = engine.run(request.model_copy(update={"decode": "fast"})).images[0]
    assert fast.record.pipeline.endswith("(tiny VAE)")
    assert fast.record.request.decode == "fast"
    assert fast.image.size == full.image.size == (64, 64)
    assert not np.array_equal(np.asarray(fast.image), np.asarray(full.image))


def test_a_model_of_no_known_family_says_so(tmp_path: Path) -> None:
    engine = engine_for(Path("limner-tiny"))
    with pytest.raises(InvalidRequestError, match="no tiny autoencoder is known for limner-tiny"):
        engine.run(GenerationRequest(prompt="red heart", steps=1, decode="fast"))  # type: ignore[arg-type]


def test_sd_shaped_models_are_of_the_taesd_family(tiny_models: dict[str, Path]) -> None:
    assert model_family(engine_for(tiny_models["txt2img"]).model_slot().pipeline) == "sd"
    assert model_family(engine_for(Path("limner-tiny")).model_slot().pipeline) is None
