"""Captioned images on disk and seeded batches.

Why this shape: a dataset is one ``images.npz`` (uint8 [N, H, W, 3]) plus one ``captions.jsonl``
record per image, so the emoji set, a DreamBooth subject folder or a test fixture all load the same
way. Every random choice of a step (which images, which caption variant, which noise) comes from a
generator seeded by ``(seed, step)``: a run resumed from a checkpoint replays exactly the batches an
uninterrupted run would have seen, with no sampler state to save.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

IMAGES_FILE = "images.npz"
CAPTIONS_FILE = "captions.jsonl"


@dataclass(frozen=True)
class CaptionedImages:
    """Images (uint8 NHWC) and, per image, caption variants (the canonical caption first)."""

    images: torch.Tensor
    captions: list[list[str]]
    records: list[dict[str, Any]]

    @classmethod
    def load(cls, folder: Path) -> CaptionedImages:
        folder = Path(folder)
        with np.load(folder / IMAGES_FILE) as archive:
            images = torch.from_numpy(archive["images"].copy())
        records = [
            json.loads(line)
            for line in (folder / CAPTIONS_FILE).read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if len(records) != images.shape[0]:
            raise ValueError(f"{folder}: {images.shape[0]} images but {len(records)} caption records")
        captions = [list(r.get("captions") or [r["caption"]]) for r in records]
        return cls(images=images, captions=captions, records=records)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / IMAGES_FILE, images=self.images.numpy())
        lines = [json.dumps(r, ensure_ascii=False) for r in self.records]
        (folder / CAPTIONS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def pixels(self, indices: torch.Tensor) -> torch.Tensor:
        """Float NCHW pixels in [-1, 1], the range the diffusers VAE expects."""
        batch = self.images[indices].permute(0, 3, 1, 2).float()
        return batch / 127.5 - 1.0


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A generator owned by one step (and one stream of randomness within it)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 16 + stream)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """Indices of step ``step``: epoch-wise shuffles, each a seeded permutation, no sampler state."""
    if n >= batch_size:
        per_epoch = n // batch_size
        epoch, k = divmod(step, per_epoch)
        perm = torch.randperm(n, generator=step_generator(seed, epoch, stream=15))
        return perm[k * batch_size : (k + 1) * batch_size]
    return torch.randint(0, n, (batch_size,), generator=step_generator(seed, step, stream=14))


def pick_captions(
    captions: list[list[str]], indices: torch.Tensor, generator: torch.Generator, drop_prob: float
) -> list[str]:
    """One caption variant per image; ``drop_prob`` of them empty, which trains classifier-free guidance."""
    picked: list[str] = []
    draws = torch.rand(len(indices), generator=generator)
    choices = torch.rand(len(indices), generator=generator)
    for index, draw, choice in zip(indices.tolist(), draws.tolist(), choices.tolist(), strict=True):
        variants = captions[index]
        picked.append("" if draw < drop_prob else variants[int(choice * len(variants)) % len(variants)])
    return picked
