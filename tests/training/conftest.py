"""Fixtures for training tests: a tiny synthetic captioned dataset and a tiny CLIP merges file.

Why synthetic: tests must run offline in seconds, so they never read the emoji set or the real
CLIP vocab; the code paths are the same ones the real run takes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from limner.training.architecture import TinyArchitecture
from limner.training.data import CaptionedImages

COLOURS = {"red": (230, 30, 30), "blue": (30, 60, 230), "green": (30, 200, 60), "yellow": (240, 220, 30)}
MERGES = ["r e", "b l", "bl u", "blu e</w>", "s q", "sq u", "squ a", "squa r", "squar e</w>", "e d</w>", "r ed</w>"]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    images = torch.full((8, 16, 16, 3), 255, dtype=torch.uint8)
    records = []
    for i, (name, rgb) in enumerate(list(COLOURS.items()) * 2):
        images[i, 4:12, 4:12] = torch.tensor(rgb, dtype=torch.uint8)
        caption = f"an emoji of {name} square"
        records.append({"caption": caption, "captions": [caption, f"{name} square"], "category": "symbols"})
    folder = tmp_path / "data"
    CaptionedImages(images=images, captions=[r["captions"] for r in records], records=records).save(folder)
    return folder


@pytest.fixture
def merges_file(tmp_path: Path) -> Path:
    path = tmp_path / "bpe.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    return path


@pytest.fixture
def tiny_arch() -> TinyArchitecture:
    return TinyArchitecture(
        image_size=16,
        vae_channels=(8, 16),
        vae_groups=4,
        unet_channels=(16, 32),
        unet_heads=2,
        unet_groups=8,
        text_hidden=16,
        text_layers=1,
        text_heads=2,
        text_positions=16,
    )
