"""The Queue page: my running, queued and recent jobs; Cancel; "Open result" opens the gallery's lightbox."""

from __future__ import annotations

import time

from limner.ui import navigation
from limner.ui.client import LimnerClient
from limner.ui.job_spec import JobSpec
from tests.api.live_server import LiveServer
from tests.ui.conftest import AppFactory, assert_clean


def test_cancel_a_long_job_and_open_a_finished_one(studio: AppFactory, server: LiveServer, token: str) -> None:
    client = LimnerClient(server.url, token)
    done = client.submit(JobSpec(prompt="a queue page cherry", seed=4, steps=2, preview=False))
    finished = list(client.follow(done.id, timeout=60))[-1]
    assert finished.status == "succeeded"
    long = client.submit(
        JobSpec(prompt="a queue page marathon", steps=1000, width=256, height=256, num_images=4, preview=False)
    )
    at = studio(navigation.QUEUE)
    assert_clean(at)
    assert any("a queue page marathon" in item.value for item in at.markdown)
    at.button(key=f"queue.cancel:{long.id}").click().run()
    assert_clean(at)
    deadline = time.monotonic() + 30
    while client.job(long.id).status != "canceled" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.job(long.id).status == "canceled"
    at.run()
    assert f"queue.cancel:{long.id}" not in [button.key for button in at.button]
    at.button(key=f"queue.open:{done.id}").click().run()
    assert_clean(at)
    assert [title.value for title in at.title] == ["Gallery"]
    assert at.table[0].value["Value"].to_dict()["Id"] == finished.result_image_ids[0]
