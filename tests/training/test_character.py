"""``limner train ip-adapter``: a tiny two-stage run writes an adapter folder diffusers loads.

Why a tiny base and 32 px data: the recipe's code paths (contrastive encoder, cached embeddings,
adapter installed with diffusers' own loader, export in the h94 layout, resume) are the real
run's; only the sizes shrink so the whole file runs in seconds on one core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from diffusers.models.embeddings import IPAdapterPlusImageProjection
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from limner.testing.tiny_models import build_tiny_pipeline
from limner.training.character import CharacterTrainConfig, held_out_split, train_character, twins_of
from limner.training.cli import train_app
from limner.training.data import CaptionedImages
from limner.training.image_encoder import EncoderArchitecture, augment
from limner.training.ip_adapter import adapter_tensors, initial_adapter, install_adapter

COLOURS = {"red": (230, 30, 30), "blue": (30, 60, 230), "green": (30, 200, 60), "yellow": (240, 220, 30)}
TINY_ENCODER = EncoderArchitecture(image_size=32, patch_size=16, hidden=16, layers=1, heads=2, projection_dim=8)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("base")
    build_tiny_pipeline(folder)
    return folder


@pytest.fixture
def square_data(tmp_path: Path) -> Path:
    """Eight 32 px pictures: four coloured squares, each in two 'styles' (sizes) sharing one subject key."""
    images = torch.full((8, 32, 32, 3), 255, dtype=torch.uint8)
    records = []
    for i, (name, rgb) in enumerate(COLOURS.items()):
        for style, (lo, hi) in enumerate(((8, 24), (4, 28))):
            images[2 * i + style, lo:hi, lo:hi] = torch.tensor(rgb, dtype=torch.uint8)
            caption = f"an emoji of {name} square"
            records.append({"caption": caption, "captions": [caption, f"{name} square"], "category": "symbols",
                            "unified": name, "style": str(style)})  # fmt: skip
    folder = tmp_path / "data"
    CaptionedImages(images=images, captions=[r["captions"] for r in records], records=records).save(folder)
    return folder


def test_held_out_subjects_leave_with_every_style(square_data: Path) -> None:
    records = CaptionedImages.load(square_data).records
    train, held = held_out_split(records, 1)
    assert len(held) == 2
    assert {records[i]["unified"] for i in held}.isdisjoint(records[i]["unified"] for i in train)
    assert held_out_split(records, 1) == (train, held)
    assert twins_of(records)[0] == [1]
    with pytest.raises(ValueError, match="nothing would be left"):
        held_out_split(records, 4)


def test_augment_keeps_a_white_ground() -> None:
    white = torch.ones(3, 3, 16, 16)
    assert torch.allclose(augment(white, torch.Generator().manual_seed(0)), white, atol=1e-5)


@pytest.mark.parametrize("plus_tokens", [0, 6])
def test_adapter_round_trips_through_diffusers_loader(tiny_base: Path, plus_tokens: int) -> None:
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_base))
    start = initial_adapter(pipe.unet, image_embed_dim=8, plus_tokens=plus_tokens, width=64)
    modules = install_adapter(pipe.unet, start)
    back = adapter_tensors(modules)
    assert back.keys() == start.keys()
    assert all(torch.equal(back[key], start[key]) for key in start)
    assert any(key.startswith("ip_adapter.1.to_k_ip") for key in back)


def test_plus_adapter_reads_patch_features(tiny_base: Path) -> None:
    """A Plus file (h94's resampler names) loads as diffusers' resampler with the asked tokens and width."""
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_base))
    modules = install_adapter(pipe.unet, initial_adapter(pipe.unet, image_embed_dim=16, plus_tokens=6, width=128))
    projection = modules["image_proj"]
    assert isinstance(projection, IPAdapterPlusImageProjection)
    assert projection.latents.shape == (1, 6, 128)
    assert projection.layers[0].attn.heads == 2
    tokens = projection(torch.randn(3, 5, 16))  # 3 references of 4 patches + class token
    assert tokens.shape == (3, 6, int(pipe.unet.config.cross_attention_dim))


@pytest.mark.parametrize("plus_tokens", [0, 6])
def test_tiny_run_writes_a_loadable_adapter_and_resumes(
    square_data: Path, tiny_base: Path, tmp_path: Path, plus_tokens: int
) -> None:
    cfg = CharacterTrainConfig(
        data=square_data, base=tiny_base, out=tmp_path / "out", work=tmp_path / "work", encoder_steps=3,
        adapter_steps=3, encoder_batch=6, adapter_batch=4, held_out=1, checkpoint_every=2, progress=False,
        arch=TINY_ENCODER, plus_tokens=plus_tokens, resampler_width=64,
    )  # fmt: skip
    out = train_character(cfg)
    weights = load_file(str(out / "ip-adapter.safetensors"))
    if plus_tokens:
        assert weights["image_proj.latents"].shape == (1, plus_tokens, 64)
        assert weights["image_proj.proj_in.weight"].shape == (64, TINY_ENCODER.hidden)
    else:
        assert weights["image_proj.proj.weight"].shape == (4 * 32, 8)
    before = {key: value.clone() for key, value in weights.items()}

    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_base))
    pipe.set_progress_bar_config(disable=True)
    pipe.load_ip_adapter(str(out), subfolder="", weight_name="ip-adapter.safetensors")
    assert pipe.image_encoder.config.image_size == 32
    arguments = {"num_inference_steps": 2, "height": 32, "width": 32, "output_type": "np"}
    reference = Image.new("RGB", (48, 48), "red")
    image = pipe("red square", ip_adapter_image=reference, generator=torch.Generator().manual_seed(0), **arguments)
    assert np.isfinite(image.images).all()

    assert train_character(cfg) == out  # finished stages are skipped: nothing retrains
    after = load_file(str(out / "ip-adapter.safetensors"))
    assert all(torch.equal(after[key], before[key]) for key in before)
    assert (out / "training.json").exists()


def test_images_of_another_size_are_a_usage_error(square_data: Path, tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    arguments = ["ip-adapter", "--data", str(square_data), "--base", str(tiny_base), "--out", str(out)]
    result = CliRunner().invoke(train_app, [*arguments, "--work", str(tmp_path / "work"), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "32 px" in " ".join(result.output.replace("│", " ").split())
