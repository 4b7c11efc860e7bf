"""Job events across processes through Redis pub/sub (the real Redis on loopback), behind the EventBus interface."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import pytest

from limner.config import Settings
from limner.services.container import _event_bus
from limner.services.jobs.events import EventBus
from tests.services.conftest import require

REDIS_URL = os.environ.get("LIMNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

PUBLISHER = """
import sys, time
from limner.services.jobs.redis_events import RedisEventBus
bus = RedisEventBus(sys.argv[1])
for step in range(1, 6):
    bus.publish(sys.argv[2], {"job_id": sys.argv[2], "status": "running", "step": step, "total_steps": 5,
                              "sent_at": time.time(), "preview": "iVBORw0KGgo" * 100})
    time.sleep(0.1)
bus.publish(sys.argv[2], {"job_id": sys.argv[2], "status": "succeeded", "step": 5, "sent_at": time.time()})
bus.close()
"""


@pytest.fixture
def redis_url() -> str:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        reachable = True
    except redis.RedisError:
        reachable = False
    require("Redis", reachable, REDIS_URL)
    return REDIS_URL


def test_events_of_another_process_arrive_within_a_second(redis_url: str) -> None:
    """A worker process publishes progress with previews; this process's subscriber sees each in < 1 s."""
    from limner.services.jobs.redis_events import RedisEventBus

    job_id = uuid.uuid4().hex
    bus = RedisEventBus(redis_url)

    async def follow() -> list[tuple[dict, float]]:
        received: list[tuple[dict, float]] = []
        async with bus.subscribe(job_id) as events:
            publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, redis_url, job_id])
            try:
                while not received or received[-1][0]["status"] != "succeeded":
                    event = await asyncio.wait_for(events.get(), timeout=30)
                    received.append((event, time.time()))
            finally:
                publisher.wait(30)
        return received

    try:
        received = asyncio.run(follow())
    finally:
        bus.close()
    assert [event["step"] for event, _ in received] == [1, 2, 3, 4, 5, 5]
    assert all(event.get("preview") for event, _ in received[:5])  # previews cross processes too
    latencies = [arrived - event["sent_at"] for event, arrived in received]
    assert max(latencies) < 1.0, latencies


def test_in_process_events_stay_the_default() -> None:
    base = {"_env_file": None}
    assert type(_event_bus(Settings(**base))) is EventBus  # type: ignore[arg-type]
    amqp = Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//", **base)  # type: ignore[arg-type]
    assert type(_event_bus(amqp)) is EventBus  # RabbitMQ carries jobs; events stay local without a Redis URL


def test_a_redis_broker_or_events_url_selects_redis_events(redis_url: str) -> None:
    from limner.services.jobs.redis_events import RedisEventBus

    for settings in (
        Settings(broker_url=redis_url, _env_file=None),  # type: ignore[call-arg]
        Settings(broker_url="amqp://127.0.0.1//", events_url=redis_url, _env_file=None),  # type: ignore[call-arg]
    ):
        bus = _event_bus(settings)
        assert isinstance(bus, RedisEventBus)
        bus.close()
