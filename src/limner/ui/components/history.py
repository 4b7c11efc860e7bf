"""This session's finished jobs on Generate: what was asked and what came back, newest first.

Why a module outside the page: Streamlit executes a page file afresh on every run, so a class
defined in it is a new class each time and entries stored in the session would stop matching
``isinstance``; classes kept in session state live in imported modules like this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from limner.ui import session
from limner.ui.components.jobs import TrackedJob
from limner.ui.job_spec import JobSpec

HISTORY = "gen.history"
SIZE = 24


@dataclass(frozen=True)
class HistoryEntry:
    job_id: str
    spec: JobSpec
    image_ids: tuple[str, ...]
    status: str
    error: str | None = None


def entries() -> list[HistoryEntry]:
    return [entry for entry in session.recall(HISTORY, list) or [] if isinstance(entry, HistoryEntry)]


def record(tracked: TrackedJob, spec: JobSpec) -> None:
    """Put a finished job at the top of the history (once)."""
    history = entries()
    if any(entry.job_id == tracked.id for entry in history):
        return
    entry = HistoryEntry(tracked.id, spec, tracked.image_ids, tracked.status, tracked.error)
    session.remember(HISTORY, [entry, *history][:SIZE])


def latest_picture() -> str | None:
    for entry in entries():
        if entry.image_ids:
            return entry.image_ids[0]
    return None
