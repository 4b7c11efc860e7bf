"""A batch the Prompt lab follows: its items (one job per prompt) and how each ended.

Why not in the page file: Streamlit executes a page afresh on every run, so a class defined there
is a new class each time and a batch kept in session state would no longer be recognised after a
rerun; classes kept in session state live in imported modules like this one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchItem:
    title: str
    prompt: str
    negative_prompt: str
    job_id: str | None  # None: the server refused this item
    status: str = "queued"
    error: str | None = None
    image_ids: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "canceled", "rejected")


@dataclass(frozen=True)
class Batch:
    title: str
    items: tuple[BatchItem, ...]
    server_id: str | None = None  # set when the server runs the batch (``/v1/batches``)
    download_url: str | None = None

    @property
    def finished(self) -> bool:
        return all(item.finished for item in self.items)
