"""The recipe of limner-tiny-control: a few steps on a tiny set, exported and resumed; edges; held-out emoji."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import ControlNetModel

from limner.training.control import ControlTrainConfig, emoji_edges, held_out, train_control
from limner.training.data import CaptionedImages
from limner.weights import LIMNER_TINY


def dataset(folder: Path, count: int = 6) -> Path:
    images = np.full((count, 64, 64, 3), 255, np.uint8)
    records = []
    for index in range(count):
        images[index, 16 + index : 48, 16 : 48 - index] = (200, 40 + 20 * index, 40)
        records.append({"caption": f"an emoji of box {index}", "captions": [f"an emoji of box {index}"],
                        "unified": f"TEST{index}"})  # fmt: skip
    CaptionedImages(torch.from_numpy(images), [r["captions"] for r in records], records).save(folder)
    return folder


def test_a_short_run_exports_a_controlnet_and_resumes(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    paths = {
        "data": dataset(tmp_path / "data"),
        "base": LIMNER_TINY,
        "out": tmp_path / "out",
        "work": tmp_path / "work",
    }
    cfg = ControlTrainConfig(**paths, steps=2, batch_size=2, checkpoint_every=1, progress=False)
    folder = train_control(cfg)
    controlnet = ControlNetModel.from_pretrained(str(folder), use_safetensors=True)
    assert list(controlnet.config.conditioning_embedding_out_channels) == [16, 32, 64]  # 64 px edges -> 16x16 latents
    assert (cfg.work / "control").is_dir()
    again = ControlTrainConfig(**{**cfg.__dict__, "steps": 3})
    train_control(again)  # resumes at step 2
    assert ControlNetModel.from_pretrained(str(folder), use_safetensors=True) is not None


def test_edges_and_held_out() -> None:
    image = np.full((64, 64, 3), 255, np.uint8)
    image[16:48, 16:48] = (0, 0, 0)
    edges = emoji_edges(image)
    assert edges.shape == (64, 64, 3)
    assert edges[16, 16:48, 0].max() == 255
    assert edges[32, 24:40, 0].max() == 0
    codes = [{"unified": f"{code:X}"} for code in range(0x1F300, 0x1F700)]
    share = sum(held_out(record) for record in codes) / len(codes)
    assert 0.02 < share < 0.07
