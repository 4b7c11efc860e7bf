"""A bounded, least-recently-used cache of loaded models.

Why: loading a model costs seconds to minutes and gigabytes, so loaded pipelines are kept; the
bound keeps memory in check. Two requests for the same unloaded model wait for one load.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from limner.engines.local.model_refs import ModelSource
from limner.engines.local.model_slot import ModelSlot

Loader = Callable[[ModelSource], Any]


class ModelCache:
    """Holds up to ``capacity`` models; the least recently used one is dropped first."""

    def __init__(self, capacity: int, loader: Loader, fuse_qkv: bool = False) -> None:
        """``fuse_qkv``: slots keep QKV projections fused while no LoRA or IP-Adapter is active."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._loader = loader
        self._fuse_qkv = fuse_qkv
        self._slots: OrderedDict[ModelSource, ModelSlot] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[ModelSource, threading.Lock] = {}

    def get(self, source: ModelSource) -> tuple[ModelSlot, bool]:
        """The slot for ``source`` and whether this call loaded it (False: it was cached)."""
        with self._lock:
            slot = self._slots.get(source)
            if slot is not None:
                self._slots.move_to_end(source)
                return slot, False
            load_lock = self._loading.setdefault(source, threading.Lock())
        with load_lock:
            with self._lock:
                slot = self._slots.get(source)
                if slot is not None:
                    self._slots.move_to_end(source)
                    return slot, False
            started = time.perf_counter()
            pipeline = self._loader(source)
            slot = ModelSlot(source.name, pipeline, time.perf_counter() - started, fuse_qkv=self._fuse_qkv)
            with self._lock:
                self._slots[source] = slot
                self._loading.pop(source, None)
                self._evict_over_capacity()
            return slot, True

    def loaded(self) -> list[str]:
        with self._lock:
            return [slot.name for slot in self._slots.values()]

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
        _release_memory()

    def _evict_over_capacity(self) -> None:
        evicted = False
        while len(self._slots) > self._capacity:
            self._slots.popitem(last=False)
            evicted = True
        if evicted:
            _release_memory()


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
