"""The dataset loader and the seeded batch helpers."""

from __future__ import annotations

from pathlib import Path

import torch

from limner.training.data import CaptionedImages, batch_indices, pick_captions, step_generator


def test_load_round_trips_images_and_caption_variants(tiny_dataset: Path) -> None:
    data = CaptionedImages.load(tiny_dataset)
    assert len(data) == 8
    assert data.captions[0] == ["an emoji of red square", "red square"]
    pixels = data.pixels(torch.tensor([0]))
    assert pixels.shape == (1, 3, 16, 16)
    assert pixels.min() >= -1.0
    assert pixels.max() <= 1.0


def test_batches_are_a_function_of_seed_and_step_only() -> None:
    first = [batch_indices(10, 4, seed=3, step=s) for s in range(5)]
    again = [batch_indices(10, 4, seed=3, step=s) for s in range(5)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    # Within one epoch (2 batches of 4 from 10) no index repeats.
    assert len(set(torch.cat(first[:2]).tolist())) == 8


def test_pick_captions_drops_to_empty_at_the_given_rate() -> None:
    captions = [["a long caption", "short"]] * 1000
    picked = pick_captions(captions, torch.arange(1000), step_generator(0, 0), drop_prob=0.2)
    empty = sum(1 for p in picked if p == "")
    assert 150 < empty < 250
    assert {p for p in picked if p} == {"a long caption", "short"}
