"""The base recipe end to end on tiny data: a loadable diffusers folder, and exact resume."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from diffusers import AutoPipelineForImage2Image, DiffusionPipeline, StableDiffusionPipeline
from transformers import CLIPTokenizer

from limner.training.architecture import TinyArchitecture, build_text_encoder, build_unet
from limner.training.base import BaseTrainConfig, SavedModel, prepare_tokenizer, train_base
from limner.training.data import CaptionedImages
from limner.training.diffusion import DiffusionTask, DiffusionTrainConfig
from limner.training.loop import LoopConfig, run_loop


def _config(tiny_dataset: Path, merges_file: Path, tmp_path: Path, arch: TinyArchitecture) -> BaseTrainConfig:
    return BaseTrainConfig(
        data=tiny_dataset,
        out=tmp_path / "model",
        work=tmp_path / "work",
        vae_steps=3,
        unet_steps=4,
        vae_batch=4,
        unet_batch=4,
        checkpoint_every=2,
        progress=False,
        bpe_path=merges_file,
        arch=arch,
    )


def test_train_base_saves_a_standard_loadable_folder(
    tiny_dataset: Path, merges_file: Path, tmp_path: Path, tiny_arch: TinyArchitecture
) -> None:
    folder = train_base(_config(tiny_dataset, merges_file, tmp_path, tiny_arch))
    names = {p.name for p in folder.iterdir()}
    assert {"model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler"} <= names
    assert not list(folder.rglob("*.bin"))
    pipe = DiffusionPipeline.from_pretrained(str(folder), use_safetensors=True)
    assert isinstance(pipe, StableDiffusionPipeline)
    assert pipe.unet.dtype == torch.float32
    image = pipe("red square", num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (16, 16, 3)
    img2img = AutoPipelineForImage2Image.from_pipe(pipe)
    out = img2img("blue square", image=torch.zeros(1, 3, 16, 16), strength=0.5, num_inference_steps=2)
    assert out.images[0].size == (16, 16)


def _diffusion_task(data: CaptionedImages, tokenizer: CLIPTokenizer, arch: TinyArchitecture) -> DiffusionTask:
    torch.manual_seed(0)
    n = len(data)
    return DiffusionTask(
        build_unet(arch),
        build_text_encoder(arch, tokenizer),
        tokenizer,
        torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(1)),
        torch.full((n, 4, 8, 8), 0.1),
        1.0,
        data.captions,
        DiffusionTrainConfig(batch_size=4, total_steps=4, warmup_steps=1),
        Accelerator(cpu=True),
    )


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    tiny_dataset: Path, merges_file: Path, tmp_path: Path, tiny_arch: TinyArchitecture
) -> None:
    cfg = _config(tiny_dataset, merges_file, tmp_path, tiny_arch)
    data = CaptionedImages.load(tiny_dataset)
    tokenizer = prepare_tokenizer(cfg, data)
    straight = _diffusion_task(data, tokenizer, tiny_arch)
    run_loop(straight, LoopConfig(steps=4, work_dir=tmp_path / "a", progress=False))

    interrupted = _diffusion_task(data, tokenizer, tiny_arch)
    run_loop(interrupted, LoopConfig(steps=2, work_dir=tmp_path / "b", checkpoint_every=2, progress=False))
    resumed = _diffusion_task(data, tokenizer, tiny_arch)
    run_loop(resumed, LoopConfig(steps=4, work_dir=tmp_path / "b", checkpoint_every=2, progress=False))

    expected, got = straight.state_dict(), resumed.state_dict()
    for key, value in expected["models"].items():
        torch.testing.assert_close(got["models"][key], value, rtol=0, atol=1e-6)
    for key, value in expected["ema"].items():
        torch.testing.assert_close(got["ema"][key], value, rtol=0, atol=1e-6)


def test_a_new_phase_starts_from_a_saved_model_and_keeps_its_vae_and_tokenizer(
    tiny_dataset: Path, merges_file: Path, tmp_path: Path, tiny_arch: TinyArchitecture
) -> None:
    base = _config(tiny_dataset, merges_file, tmp_path, tiny_arch)
    first = train_base(base)
    saved = SavedModel.load(first)
    phase = replace(base, out=tmp_path / "refined", work=tmp_path / "refine-work", init_from=first, learning_rate=1e-4)

    refined = SavedModel.load(train_base(phase))

    assert refined.tokenizer.get_vocab() == saved.tokenizer.get_vocab()
    for key, value in saved.vae.state_dict().items():
        torch.testing.assert_close(refined.vae.state_dict()[key], value, rtol=0, atol=0)
    # The UNet moved from the saved weights, not from a fresh initialisation: a small step away.
    start, end = saved.unet.state_dict(), refined.unet.state_dict()
    moved = max((end[k] - start[k]).abs().max().item() for k in start if start[k].dtype.is_floating_point)
    fresh = build_unet(tiny_arch).state_dict()
    distance_to_fresh = max((end[k] - fresh[k]).abs().max().item() for k in fresh if fresh[k].dtype.is_floating_point)
    assert 0 < moved < distance_to_fresh


def test_a_new_phase_refuses_to_overwrite_its_own_starting_model(
    tiny_dataset: Path, merges_file: Path, tmp_path: Path, tiny_arch: TinyArchitecture
) -> None:
    base = _config(tiny_dataset, merges_file, tmp_path, tiny_arch)
    first = train_base(base)
    with pytest.raises(ValueError, match="--out must differ"):
        train_base(replace(base, work=tmp_path / "again", init_from=first))
    with pytest.raises(FileNotFoundError, match="not a limner model folder"):
        train_base(replace(base, out=tmp_path / "x", init_from=tmp_path / "work"))
