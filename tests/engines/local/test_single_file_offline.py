"""AUTOMATIC1111-style single files (SD 1.5, SD 2.1, SDXL layouts) load and generate with no hub at all.

The checkpoints are tiny random weights in the original key layout (``limner.testing.single_file``);
their tiny family configs go through the loader's config-root parameter, the same path the shipped
real configs take. Sockets are closed and the hub cache is empty: any download attempt fails.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from limner.core.errors import ModelDownloadError
from limner.engines.local.device import Placement
from limner.engines.local.loading import load_pipeline
from limner.engines.local.model_refs import resolve_model
from limner.testing.single_file import write_tiny_single_file

CPU = Placement(torch.device("cpu"), torch.float32)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-home" / "hub"))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize(
    ("family", "file_name", "metadata", "pipeline_class", "prediction"),
    [
        ("sd15", "v1-5-pruned-emaonly", {}, "StableDiffusionPipeline", "epsilon"),
        ("sd2-768-v", "v2-1_768-ema-pruned", {}, "StableDiffusionPipeline", "v_prediction"),
        (
            "sd2-512",
            "my-merge",
            {"modelspec.architecture": "stable-diffusion-v2-512"},
            "StableDiffusionPipeline",
            "epsilon",
        ),
        ("sdxl-base", "sd_xl_base_1.0", {}, "StableDiffusionXLPipeline", "epsilon"),
    ],
)
@pytest.mark.usefixtures("no_network")
def test_single_file_loads_offline_and_generates(
    tmp_path: Path, family: str, file_name: str, metadata: dict[str, str], pipeline_class: str, prediction: str
) -> None:
    checkpoint = tmp_path / "models" / f"{file_name}.safetensors"
    written = write_tiny_single_file(family, checkpoint, tmp_path / "configs", metadata=metadata)
    pipeline = load_pipeline(resolve_model(str(checkpoint)), CPU, single_file_configs=tmp_path / "configs")
    assert type(pipeline).__name__ == pipeline_class
    assert pipeline.scheduler.config.prediction_type == prediction
    for name, module in written.items():  # every weight came from the file, under its diffusers name
        loaded = getattr(pipeline, name).state_dict()
        assert all(torch.equal(loaded[key], value) for key, value in module.state_dict().items()), name
    image = pipeline(
        "a red fox",
        num_inference_steps=2,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert image.shape == (32, 32, 3)
    assert np.isfinite(image).all()


@pytest.mark.usefixtures("no_network")
def test_family_without_shipped_configs_says_which_load_offline(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    checkpoint = tmp_path / "sd-v1-5-inpainting.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(8, 9, 3, 3)}, str(checkpoint))
    with pytest.raises(ModelDownloadError, match=r"limner ships configs for SD 1\.x") as caught:
        load_pipeline(resolve_model(str(checkpoint)), CPU)
    assert "\n" not in str(caught.value)


@pytest.mark.usefixtures("no_network")
def test_a_hub_cache_of_the_family_wins_over_the_shipped_configs(tmp_path: Path) -> None:
    """With no config root given, the family's cached diffusers repo is used: here it holds tiny configs,
    which only fit the tiny file (the shipped real-size configs would not)."""
    import shutil

    checkpoint = tmp_path / "v1-5-pruned-emaonly.safetensors"
    written = write_tiny_single_file("sd15", checkpoint, tmp_path / "configs")
    repo = tmp_path / "empty-hf-home" / "hub" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5"
    revision = "0" * 40
    shutil.copytree(tmp_path / "configs" / "sd15", repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    pipeline = load_pipeline(resolve_model(str(checkpoint)), CPU)
    assert len(pipeline.tokenizer) == 514  # the cached byte-level tokenizer, not the shipped CLIP one
    assert torch.equal(pipeline.unet.conv_in.weight, written["unet"].conv_in.weight)
