"""In-process pub/sub for job progress: worker threads publish, async SSE/WebSocket handlers listen.

Why this shape: the worker runs in plain threads, the API in an event loop. A subscriber owns an
``asyncio.Queue`` bound to its loop; ``publish`` hands each event over with
``call_soon_threadsafe``, so no thread ever touches another loop's queue directly. Events reach
only subscribers in this process; :class:`limner.services.jobs.redis_events.RedisEventBus` is the
same interface across processes (chosen by settings, this one stays the default).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from limner.db.models import JobStatus

SUBSCRIBER_QUEUE_SIZE = 256
ENDS = frozenset(status.value for status in JobStatus if status.finished)
"""The statuses of a job's last event."""

_Listener = tuple[asyncio.AbstractEventLoop, "asyncio.Queue[dict[str, Any]]", bool]


class EventBus:
    delivers_from_subscribe = True
    """Whether every event published after :meth:`subscribe` has entered its block reaches it (here: the
    listener is in the dictionary before the block starts). A sync wait that subscribed before its job
    was stored then needs no first read of the job's row."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[_Listener]] = defaultdict(set)
        self._lock = threading.Lock()

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        """Deliver ``event`` to every listener of ``job_id``; slow listeners drop old progress events."""
        self._deliver(job_id, event)

    def close(self) -> None:
        """Release connections (none in process)."""

    def _on_subscribe(self) -> None:
        """Called before a listener is added (a cross-process bus starts listening here)."""

    def _deliver(self, job_id: str, event: dict[str, Any]) -> None:
        """Hand ``event`` to this process's listeners of ``job_id``."""
        with self._lock:
            listeners = list(self._subscribers.get(job_id, ()))
        for loop, queue, ends_only in listeners:
            if ends_only and event.get("status") not in ENDS:
                continue  # a step: not worth waking a loop that waits for the end
            try:
                loop.call_soon_threadsafe(_offer, queue, event)
            except RuntimeError:  # the listener's loop has closed
                continue

    @asynccontextmanager
    async def subscribe(self, job_id: str, *, ends_only: bool = False) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """Events of ``job_id`` while the block runs; with ``ends_only``, only its last one (a sync wait:
        each step event would wake the loop, which shares the interpreter with the job's thread)."""
        self._on_subscribe()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_SIZE)
        entry: _Listener = (asyncio.get_running_loop(), queue, ends_only)
        with self._lock:
            self._subscribers[job_id].add(entry)
        try:
            yield queue
        finally:
            with self._lock:
                listeners = self._subscribers.get(job_id)
                if listeners is not None:
                    listeners.discard(entry)
                    if not listeners:
                        del self._subscribers[job_id]


def _offer(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()  # drop the oldest; the latest progress matters most
    queue.put_nowait(event)
