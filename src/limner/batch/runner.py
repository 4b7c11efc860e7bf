"""Run a planned batch: one generation per pending item, images and info files into its folder.

Why items fail alone: one refused prompt (moderation, a provider hiccup) must not cost the rest of
the batch. The failure is recorded in the manifest with its message, and the next run tries it
again. A cancel stops at once and leaves the item pending. The manifest is saved after every item,
so a crash loses at most the item in flight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from limner.batch.info import INFO_JSON, INFO_MD, item_info, write_item_info
from limner.batch.plan import BatchItem, BatchManifest, item_fields, save_manifest
from limner.core.errors import GenerationCanceledError, LimnerError
from limner.core.progress import CancelToken, ProgressEvent
from limner.core.records import GenerationResult
from limner.imaging.png import save_png
from limner.services.generation import GenerationService

_OUR_PNG = re.compile(r"^\d{5}-\d+\.png$")


class BatchListener(Protocol):
    """What a progress display needs to know. Every method is called on the batch's own thread."""

    def item_started(self, item: BatchItem, position: int, total: int) -> None: ...

    def step(self, event: ProgressEvent) -> None: ...

    def item_finished(self, item: BatchItem) -> None: ...


class SilentListener:
    def item_started(self, item: BatchItem, position: int, total: int) -> None:
        return None

    def step(self, event: ProgressEvent) -> None:
        return None

    def item_finished(self, item: BatchItem) -> None:
        return None


@dataclass
class BatchReport:
    """What this run did: items made now, skipped because already done, and failed."""

    done: list[BatchItem] = field(default_factory=list)
    skipped: list[BatchItem] = field(default_factory=list)
    failed: list[BatchItem] = field(default_factory=list)


def pending_items(manifest: BatchManifest, out_dir: Path) -> list[BatchItem]:
    return [item for item in manifest.items if not item.is_done(out_dir)]


def check_batch(manifest: BatchManifest, out_dir: Path, generation: GenerationService) -> None:
    """Validate the first pending item: a problem every item shares (a missing key, a size the provider
    cannot draw, an unknown model) stops the batch before anything is written."""
    pending = pending_items(manifest, out_dir)
    if pending:
        generation.prepare(item_fields(pending[0], manifest.options))


def run_batch(
    manifest: BatchManifest,
    out_dir: Path,
    generation: GenerationService,
    listener: BatchListener | None = None,
    cancel: CancelToken | None = None,
) -> BatchReport:
    listener = listener or SilentListener()
    cancel = cancel or CancelToken()
    report = BatchReport()
    pending = pending_items(manifest, out_dir)
    report.skipped = [item for item in manifest.items if item not in pending]
    save_manifest(out_dir, manifest)
    for position, item in enumerate(pending, start=1):
        listener.item_started(item, position, len(pending))
        item.attempts += 1
        try:
            request = generation.prepare(item_fields(item, manifest.options))
            result = generation.run(request, progress=listener.step, cancel=cancel)
            write_item(out_dir, manifest, item, result, compress_level=generation.settings.png_compress_level)
        except GenerationCanceledError:
            item.status = "pending"
            save_manifest(out_dir, manifest)
            raise
        except LimnerError as exc:
            _fail(item, str(exc), exc.code)
        except Exception as exc:  # a bug or a runtime failure (e.g. out of memory) costs this item only
            _fail(item, f"{type(exc).__name__}: {exc}", "internal_error")
        save_manifest(out_dir, manifest)
        (report.done if item.status == "done" else report.failed).append(item)
        listener.item_finished(item)
    return report


def write_item(
    out_dir: Path, manifest: BatchManifest, item: BatchItem, result: GenerationResult, *, compress_level: int
) -> None:
    """Images, ``info.json`` and ``info.md`` of one item, and mark it done (a queue worker calls this per job)."""
    folder = out_dir / item.folder
    _clear_stale(folder)
    names = [save_png(image, folder, compress_level=compress_level).name for image in result.images]
    records = [image.record for image in result.images]
    info = item_info(item.idea, list(zip(names, records, strict=True)), batch_id=manifest.batch_id, index=item.index)
    write_item_info(folder, info)
    item.images = names
    item.status = "done"
    item.error = item.error_code = None


def _clear_stale(folder: Path) -> None:
    """Files an interrupted earlier attempt left in this item's own folder (never anything else)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_file() and (_OUR_PNG.match(entry.name) or entry.name in (INFO_JSON, INFO_MD)):
            entry.unlink()


def _fail(item: BatchItem, message: str, code: str) -> None:
    item.status = "failed"
    item.error = message
    item.error_code = code
    item.images = []
