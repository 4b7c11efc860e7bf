"""Job events across processes: the :class:`EventBus` interface over Redis pub/sub.

Why Redis pub/sub: with Celery workers on other machines, a job's progress and step previews are
published in a worker process, while the SSE or WebSocket client waits on whichever API process
its request reached. Every publisher sends to the channel ``limner:job:<id>``; each process that
has listeners runs one listener thread, pattern-subscribed to ``limner:job:*``, which hands each
message to that process's local subscribers through the in-process bus (so the asyncio side is
exactly the in-process one). Processes that only publish (workers) open no subscription.

Pub/sub is fire-and-forget: an event published while nobody listens is gone. That is fine here,
because events are only the live view; the job row stays the truth, and SSE reads it first and
falls back to it. Redis is imported only when this bus is configured (``LIMNER_EVENTS_URL``, or a
``redis://`` broker URL).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import redis

from limner.services.jobs.events import EventBus

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "limner:job:"
RECONNECT_SECONDS = 1.0


class RedisEventBus(EventBus):
    """Publishes to Redis; delivers what any process published to this process's subscribers."""

    delivers_from_subscribe = False  # the pattern subscription is confirmed by Redis later, on the listener's thread

    def __init__(self, url: str) -> None:
        super().__init__()
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        self._listener: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = threading.Event()

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        """Send ``event`` to every process's listeners of ``job_id``; a Redis outage only loses live updates."""
        try:
            self._client.publish(f"{CHANNEL_PREFIX}{job_id}", json.dumps(event, default=str))
        except redis.RedisError as exc:
            logger.warning("event for job %s not published: %s", job_id, exc)

    def _on_subscribe(self) -> None:
        self._ensure_listening()

    def _ensure_listening(self) -> None:
        with self._start_lock:
            if self._listener is not None or self._closed.is_set():
                return
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
            self._listener = threading.Thread(target=self._listen, args=(pubsub,), name="redis-events", daemon=True)
            self._listener.start()

    def _listen(self, pubsub: Any) -> None:
        while not self._closed.is_set():
            try:
                message = pubsub.get_message(timeout=1.0)
            except (redis.RedisError, OSError) as exc:  # redis-py resubscribes when it reconnects
                logger.warning("event listener lost Redis: %s", exc)
                self._closed.wait(RECONNECT_SECONDS)
                continue
            if message is None or message.get("type") != "pmessage":
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            try:
                event = json.loads(message["data"])
            except ValueError:
                continue
            self._deliver(channel.removeprefix(CHANNEL_PREFIX), event)
        pubsub.close()

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.join(5)
        self._client.close()
