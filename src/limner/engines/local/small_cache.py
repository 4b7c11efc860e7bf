"""A few small loaded modules kept by key, the least recently used dropped first.

Why apart from :class:`limner.engines.local.cache.ModelCache`: control models and pixel upscalers
are megabytes, not gigabytes, so loading one under the cache's lock (one load at a time) is
simpler than the model cache's per-model load locks, and nothing needs releasing on eviction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SmallModuleCache(Generic[K, V]):
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._loaded: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The module kept under ``key``, loaded by ``load`` on first use."""
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            module = load()
            self._loaded[key] = module
            while len(self._loaded) > self._capacity:
                self._loaded.popitem(last=False)
            return module

    def loaded_keys(self) -> list[K]:
        with self._lock:
            return list(self._loaded)
