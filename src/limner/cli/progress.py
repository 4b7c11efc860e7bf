"""Rich progress displays of the CLI: denoising steps of one request, or the items of a batch.

Imported only by commands that generate, inside their bodies, so that ``--help`` does not load it.
"""

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
def progress_display(console: Console) -> Iterator[Progress]:
    """Spinner, label, bar, done/total and elapsed time; drawn only on a terminal, and erased when done."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as display:
        yield display


@contextmanager
def step_progress(console: Console, label: str) -> Iterator[ProgressCallback]:
    """Yield a progress callback that drives a bar; shows a spinner until the first step (loading)."""
    with progress_display(console) as bar:
        task_id = bar.add_task(f"{label} (loading model)", total=None)

        def on_progress(event: ProgressEvent) -> None:
            bar.update(task_id, description=label, total=event.total_steps, completed=event.step)

        yield on_progress
