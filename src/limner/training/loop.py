"""The shared seeded step loop: resume, progress, logging, checkpoints.

Why one loop: the VAE stage, the diffusion stage and later fine-tuning all need the same
discipline: the step index is the only state besides the weights (batches and noise derive from
``(seed, step)``), a checkpoint every N steps, a resume that continues bit-for-bit, and a hook at
each checkpoint (the base recipe exports the current EMA model there, so a stopped run still leaves
a usable model behind).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from limner.training.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


class TrainTask(Protocol):
    """One trainable stage: a step function plus the state a checkpoint must hold."""

    def step(self, index: int) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    work_dir: Path
    checkpoint_every: int = 500
    log_every: int = 50
    resume: bool = True
    description: str = "training"
    progress: bool = True


def run_loop(task: TrainTask, cfg: LoopConfig, on_checkpoint: Callable[[int], None] | None = None) -> int:
    """Run ``task`` from its checkpointed step (or 0) to ``cfg.steps``; return the final step."""
    start = 0
    state = load_checkpoint(cfg.work_dir) if cfg.resume else None
    if state is not None:
        task.load_state_dict(state["task"])
        start = int(state["step"])
        log.info("%s: resumed at step %d from %s", cfg.description, start, cfg.work_dir)
    if start >= cfg.steps:
        return start
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    started = time.monotonic()
    running: dict[str, float] = {}
    with Progress(*columns, disable=not cfg.progress) as progress:
        bar = progress.add_task(cfg.description, total=cfg.steps, completed=start)
        for step in range(start, cfg.steps):
            metrics = task.step(step)
            for key, value in metrics.items():
                running[key] = 0.98 * running.get(key, value) + 0.02 * value
            progress.advance(bar)
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                rate = (done - start) / max(time.monotonic() - started, 1e-9)
                shown = " ".join(f"{k}={v:.4f}" for k, v in running.items())
                log.info("%s step %d/%d %s (%.2f steps/s)", cfg.description, done, cfg.steps, shown, rate)
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                save_checkpoint(cfg.work_dir, {"step": done, "task": task.state_dict()})
                if on_checkpoint is not None:
                    on_checkpoint(done)
    return cfg.steps
