"""``limner train edit`` on tiny data: an InstructPix2Pix folder that loads and edits, from a widened base UNet."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionInstructPix2PixPipeline
from typer.testing import CliRunner

from limner.training.architecture import (
    TinyArchitecture,
    build_text_encoder,
    build_unet,
    build_vae,
    inference_scheduler,
)
from limner.training.base import BaseTrainConfig, prepare_tokenizer
from limner.training.cli import train_app
from limner.training.data import CaptionedImages
from limner.training.edit import widen_conv_in
from limner.training.export import save_pipeline


def _tiny_base(data: Path, merges: Path, folder: Path, arch: TinyArchitecture) -> Path:
    """A random limner-tiny-shaped text-to-image folder (what ``train base`` writes)."""
    cfg = BaseTrainConfig(data=data, out=folder, work=folder.parent / "base-work", bpe_path=merges, arch=arch)
    tokenizer = prepare_tokenizer(cfg, CaptionedImages.load(data))
    torch.manual_seed(0)
    return save_pipeline(
        folder,
        unet=build_unet(arch),
        vae=build_vae(arch),
        text_encoder=build_text_encoder(arch, tokenizer),
        tokenizer=tokenizer,
        scheduler=inference_scheduler(),
    )


def test_widened_unet_starts_as_the_base_model(tiny_arch: TinyArchitecture) -> None:
    """The 4 new input channels are zero: whatever the input picture, the output is the base UNet's."""
    torch.manual_seed(0)
    base = build_unet(tiny_arch).eval()
    wide = widen_conv_in(base).eval()
    assert wide.config["in_channels"] == 8
    assert wide.conv_in.weight.shape[1] == 8
    assert (wide.conv_in.weight[:, 4:] == 0).all()
    noisy, picture = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    text = torch.randn(2, 5, tiny_arch.text_hidden)
    with torch.no_grad():
        expected = base(noisy, 10, encoder_hidden_states=text).sample
        got = wide(torch.cat([noisy, picture], 1), 10, encoder_hidden_states=text).sample
    torch.testing.assert_close(got, expected)


def test_train_edit_writes_a_loadable_instruct_pix2pix_folder(
    tiny_dataset: Path, merges_file: Path, tmp_path: Path, tiny_arch: TinyArchitecture
) -> None:
    base = _tiny_base(tiny_dataset, merges_file, tmp_path / "base", tiny_arch)
    out, work = tmp_path / "edit", tmp_path / "work"
    arguments = ["edit", "--data", str(tiny_dataset), "--base", str(base), "--out", str(out), "--work", str(work)]
    options = ["--steps", "2", "--batch", "4", "--checkpoint-every", "1", "--no-progress", "--threads", "1"]
    result = CliRunner().invoke(train_app, [*arguments, *options])
    assert result.exit_code == 0, result.output
    assert (work / "edit" / "checkpoint").is_dir()
    pipe = DiffusionPipeline.from_pretrained(str(out), use_safetensors=True)
    assert isinstance(pipe, StableDiffusionInstructPix2PixPipeline)
    assert pipe.unet.config["in_channels"] == 8
    assert not list(out.rglob("*.bin"))
    picture = CaptionedImages.load(tiny_dataset).pixels(torch.tensor([0]))
    image = pipe("make it blue", image=picture, num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (16, 16, 3)


def test_train_edit_refuses_a_base_that_is_not_a_model(tiny_dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        train_app, ["edit", "--data", str(tiny_dataset), "--base", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    assert "not a limner model folder" in " ".join(result.output.replace("│", " ").split())
