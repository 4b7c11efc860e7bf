"""The newest generated pictures' bytes, kept in memory for the sync answer that asks for them next.

Why: a sync request (``Accept: image/png``) answers with the first image of the job it just made.
When the worker runs in the API's process, the bytes were in memory a moment before; reading them
back from the file store was a hop to a thread and a read on the path of every sync answer. Each
entry is taken once (the answer) or pushed out by newer ones, within a count and a byte budget;
a deleted or discarded image is dropped. A miss (the worker in another process) reads the file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

RECENT_PICTURES = 8
RECENT_BYTES = 32 * 1024 * 1024


class RecentOutputs:
    def __init__(self, max_pictures: int = RECENT_PICTURES, max_bytes: int = RECENT_BYTES) -> None:
        self._max_pictures = max_pictures
        self._max_bytes = max_bytes
        self._pictures: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def keep(self, image_id: str, data: bytes) -> None:
        if len(data) > self._max_bytes:
            return
        with self._lock:
            self._pictures[image_id] = data
            self._bytes += len(data)
            while len(self._pictures) > self._max_pictures or self._bytes > self._max_bytes:
                _, oldest = self._pictures.popitem(last=False)
                self._bytes -= len(oldest)

    def take(self, image_id: str) -> bytes | None:
        """The picture's bytes if it is still kept (and no longer after this)."""
        with self._lock:
            data = self._pictures.pop(image_id, None)
            if data is not None:
                self._bytes -= len(data)
            return data

    def drop(self, image_id: str) -> None:
        self.take(image_id)
