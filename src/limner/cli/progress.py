"""A Rich progress bar for denoising steps, fed by the engine's progress events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from limner.core.progress import ProgressCallback, ProgressEvent


@contextmanager
def step_progress(console: Console, label: str) -> Iterator[ProgressCallback]:
    """Yield a progress callback that drives a bar; shows a spinner until the first step (loading)."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task_id = bar.add_task(f"{label} (loading model)", total=None)

        def on_progress(event: ProgressEvent) -> None:
            bar.update(task_id, description=label, total=event.total_steps, completed=event.step)

        yield on_progress
