"""Training noise: the offset adds a per-channel constant of the asked-for size, and nothing when off."""

from __future__ import annotations

import pytest
import torch

from limner.training.diffusion import training_noise


def _channel_mean_std(offset: float) -> float:
    noise = training_noise(torch.Size((4096, 4, 16, 16)), torch.Generator().manual_seed(0), offset)
    return noise.mean(dim=(2, 3)).std().item()


def test_without_offset_channel_means_are_only_averaging_noise() -> None:
    # The mean of 256 unit Gaussians has std 1/16.
    assert _channel_mean_std(0.0) == pytest.approx(1 / 16, rel=0.05)


def test_offset_adds_a_per_channel_constant_of_its_std() -> None:
    expected = (1 / 16**2 + 0.15**2) ** 0.5
    assert _channel_mean_std(0.15) == pytest.approx(expected, rel=0.05)


def test_offset_leaves_the_noise_within_each_channel_unchanged() -> None:
    shape = torch.Size((2, 4, 16, 16))
    plain = training_noise(shape, torch.Generator().manual_seed(3), 0.0)
    offset = training_noise(shape, torch.Generator().manual_seed(3), 0.5)
    shift = offset - plain
    torch.testing.assert_close(shift, shift.mean(dim=(2, 3), keepdim=True).expand_as(shift))
    assert shift.abs().max() > 0
