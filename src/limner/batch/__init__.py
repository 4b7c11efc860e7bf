"""Batches: N ideas (generated or from a CSV) -> one folder per idea with images, info.md, info.json.

``plan`` makes and stores the plan (the manifest that lets a re-run resume), ``runner`` runs it,
``info`` writes the description files, ``slugs`` names the folders.
"""

from limner.batch.plan import BatchItem, BatchManifest, BatchOptions
from limner.batch.runner import BatchReport, run_batch

__all__ = ["BatchItem", "BatchManifest", "BatchOptions", "BatchReport", "run_batch"]
