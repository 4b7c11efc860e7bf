"""AUTOMATIC1111-style single files (SD 1.5, SD 2.1, SDXL layouts) load and generate with no hub at all.

The checkpoints are tiny random weights in the original key layout (``limner.testing.single_file``);
their tiny family configs go through the loader's config-root parameter, the same path the shipped
real configs take. Sockets are closed and the hub cache is empty: any download attempt fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from limner.core.errors import ModelDownloadError
from limner.engines.local.device import Placement
from limner.engines.local.loading import load_pipeline
from limner.engines.local.model_refs import resolve_model
from limner.testing.single_file import go_offline, write_tiny_single_file

CPU = Placement(torch.device("cpu"), torch.float32)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    go_offline(monkeypatch, tmp_path / "empty-hf-home")


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


@pytest.mark.parametrize(
    ("family", "file_name", "pipeline_class"),
    [
        ("sd15-inpainting", "sd-v1-5-inpainting", "StableDiffusionInpaintPipeline"),
        ("sd2-inpainting", "512-inpainting-ema", "StableDiffusionInpaintPipeline"),
        ("sdxl-inpainting", "sd_xl_inpainting_0.1", "StableDiffusionXLInpaintPipeline"),
    ],
)
@pytest.mark.usefixtures("no_network")
def test_inpainting_single_file_loads_offline_and_inpaints(
    tmp_path: Path, family: str, file_name: str, pipeline_class: str
) -> None:
    """A UNet with 9 input channels (AUTOMATIC1111's test) reads as its inpainting family, not the base."""
    checkpoint = tmp_path / f"{file_name}.safetensors"
    written = write_tiny_single_file(family, checkpoint, tmp_path / "configs")
    pipeline = load_pipeline(resolve_model(str(checkpoint)), CPU, single_file_configs=tmp_path / "configs")
    assert type(pipeline).__name__ == pipeline_class
    assert pipeline.unet.config.in_channels == 9
    assert torch.equal(pipeline.unet.conv_in.weight, written["unet"].conv_in.weight)
    picture = Image.new("RGB", (32, 32), "skyblue")
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (0, 0, 16, 32))
    image = pipeline(
        "a red door",
        image=picture,
        mask_image=mask,
        num_inference_steps=2,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert image.shape == (32, 32, 3)
    assert np.isfinite(image).all()


@pytest.mark.usefixtures("no_network")
def test_limner_inpaint_runs_an_inpainting_single_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI end to end: the tiny configs stand in for the shipped folder (real-size configs would not
    fit the tiny weights), so the tiny file loads as a real one would."""
    from typer.testing import CliRunner

    from limner.cli.main import app
    from limner.engines.local import single_file_configs

    checkpoint = tmp_path / "sd-v1-5-inpainting.safetensors"
    write_tiny_single_file("sd15-inpainting", checkpoint, tmp_path / "configs")
    monkeypatch.setattr(single_file_configs, "shipped_config_root", lambda: tmp_path / "configs")
    Image.new("RGB", (64, 64), "skyblue").save(tmp_path / "photo.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    mask.save(tmp_path / "mask.png")
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    arguments = ["inpaint", "photo.png", "a red door", "--mask", "mask.png", "--model", str(checkpoint)]
    result = CliRunner().invoke(app, [*arguments, "--steps", "2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) == 1
    assert Image.open(written[0]).size == (64, 64)


@pytest.mark.usefixtures("no_network")
def test_family_without_shipped_configs_says_which_load_offline(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    checkpoint = tmp_path / "flux1-schnell.safetensors"
    save_file({"double_blocks.0.img_attn.norm.key_norm.scale": torch.zeros(8)}, str(checkpoint))
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
