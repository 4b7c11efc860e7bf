"""Checkpoints round-trip optimizer-shaped state through safetensors + JSON, with no pickle."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from limner.training.checkpoint import CHECKPOINT_DIR, load_checkpoint, save_checkpoint


def test_round_trip_keeps_types_and_integer_keys(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {"step": 7, "task": {"optimizer": optimizer.state_dict(), "weights": model.state_dict(), "note": None}}
    save_checkpoint(tmp_path, state)
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None
    assert loaded["step"] == 7
    saved_optimizer = loaded["task"]["optimizer"]
    assert set(saved_optimizer["state"]) == {0, 1}
    assert isinstance(saved_optimizer["param_groups"][0]["betas"], tuple)
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    fresh.load_state_dict(saved_optimizer)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert not list(tmp_path.rglob("*.pt"))


def test_interrupted_swap_falls_back_to_the_previous_checkpoint(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"step": 1, "w": torch.ones(2)})
    os.replace(tmp_path / CHECKPOINT_DIR, tmp_path / f"{CHECKPOINT_DIR}.old")  # as if killed mid-swap
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None
    assert loaded["step"] == 1
    assert load_checkpoint(tmp_path / "empty") is None
