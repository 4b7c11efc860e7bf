"""The in-process event bus: a listener that waits for a job's end is not woken by its steps."""

from __future__ import annotations

import asyncio
from typing import Any

from limner.services.jobs.events import EventBus


def test_a_listener_of_ends_only_is_woken_once_per_job() -> None:
    bus = EventBus()

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        loop = asyncio.get_running_loop()
        wakes = 0
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any) -> Any:
            nonlocal wakes
            wakes += callback.__name__ == "_offer"  # an event handed over (to_thread's own returns aside)
            return call_soon_threadsafe(callback, *args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        async with bus.subscribe("j", ends_only=True) as ends, bus.subscribe("j") as everything:
            events = [{"status": "running", "step": step} for step in range(5)] + [{"status": "succeeded"}]
            await asyncio.gather(*(asyncio.to_thread(bus.publish, "j", event) for event in events))
            await asyncio.sleep(0.05)
            return drain(ends), drain(everything), wakes

    ends, everything, wakes = asyncio.run(scenario())
    assert [event["status"] for event in ends] == ["succeeded"]
    assert len(everything) == 6
    assert wakes == 6 + 1  # every event for the full listener, the end alone for the other


def drain(queue: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
