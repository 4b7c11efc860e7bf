"""Webhooks: Standard Webhooks signatures (checked with the stock library), delivered off the worker with backoff."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy.orm import Session, sessionmaker

from limner.db.models import JobStatus, User
from limner.services.jobs.events import EventBus
from limner.services.jobs.webhooks import (
    SIGNATURE_HEADER,
    WebhookDeliveries,
    WebhookSender,
    sign_standard,
    standard_secret,
    verify_signature,
)
from limner.services.jobs.worker import Worker
from tests.services.test_queue import enqueue, make_queue, make_user


class Receiver:
    """A loopback receiver that answers each call with the next planned status (then 204), after ``delay``."""

    def __init__(self, statuses: list[int], delay: float = 0.0) -> None:
        self.calls: list[tuple[float, dict[str, str], bytes]] = []
        self.statuses = list(statuses)
        self.delivered = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((time.monotonic(), dict(self.headers.items()), body))
                time.sleep(delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status < 300:
                    receiver.delivered.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def flaky() -> Iterator[Receiver]:
    receiver = Receiver([503, 503])
    yield receiver
    receiver.close()


def loopback_sender() -> WebhookSender:
    return WebhookSender(2, allow_private=True)  # the receiver is on loopback; the SSRF rules are tested in api/


def test_standard_webhooks_signature_verifies_with_the_stock_library() -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    body = json.dumps({"type": "job.finished", "job_id": "j1"}).encode()
    timestamp = int(time.time())
    headers = {
        "webhook-id": "msg_j1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard("owner secret", "msg_j1", timestamp, body),
    }
    assert standardwebhooks.Webhook(standard_secret("owner secret")).verify(body, headers)["job_id"] == "j1"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(standard_secret("another secret")).verify(body, headers)


def test_deliveries_retry_with_backoff_and_keep_one_id(flaky: Receiver) -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    deliveries = WebhookDeliveries(loopback_sender(), first_delay=0.2, max_attempts=4)
    submitted = time.monotonic()
    deliveries.submit(flaky.url, "owner secret", {"type": "job.finished", "job_id": "j2"}, message_id="msg_j2")
    assert time.monotonic() - submitted < 0.05  # the caller never waits for the receiver
    assert flaky.delivered.wait(10)
    deliveries.close()
    times = [at for at, _, _ in flaky.calls]
    assert len(times) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert 0.15 < gaps[0] < gaps[1]  # 0.2 s, then 0.4 s (with jitter)
    assert {headers["webhook-id"] for _, headers, _ in flaky.calls} == {"msg_j2"}
    _, headers, body = flaky.calls[-1]
    standardwebhooks.Webhook(standard_secret("owner secret")).verify(body, {k.lower(): v for k, v in headers.items()})
    assert verify_signature("owner secret", headers[SIGNATURE_HEADER], body)  # the older header still comes
    assert (deliveries.delivered, deliveries.dropped) == (1, 0)


def test_a_client_error_is_not_retried() -> None:
    receiver = Receiver([410])
    deliveries = WebhookDeliveries(loopback_sender(), first_delay=0.05)
    try:
        deliveries.submit(receiver.url, "s", {"type": "job.finished"}, message_id="msg_x")
        deadline = time.monotonic() + 5
        while deliveries.dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        deliveries.close()
        receiver.close()
    assert len(receiver.calls) == 1
    assert deliveries.dropped == 1


def test_the_worker_does_not_wait_for_a_slow_receiver(sessions: sessionmaker[Session]) -> None:
    """A receiver that takes 2 s per call holds only the delivery thread: the worker is free before the
    receiver answers (judged by that order, not by a time limit, which a busy machine can overrun)."""
    delay = 2.0
    receiver = Receiver([], delay=delay)
    user = make_user(sessions)
    queue = make_queue(sessions)
    deliveries = WebhookDeliveries(loopback_sender())
    worker = Worker(queue, sessions, {"generate": lambda context: []}, EventBus(), deliveries)  # type: ignore[dict-item]
    job = enqueue(queue, sessions, user, webhook_url=receiver.url)
    try:
        assert worker.run_once()
        free_at = time.monotonic()
        assert receiver.delivered.wait(10)
    finally:
        deliveries.close()
        receiver.close()
    called_at = receiver.calls[0][0]
    assert free_at < called_at + delay, (free_at, called_at)
    _, headers, body = receiver.calls[0]
    with sessions() as session:
        owner = session.get(User, user.id)
        assert owner is not None
    event = json.loads(body)
    assert (event["job_id"], event["status"], headers["webhook-id"]) == (job.id, JobStatus.SUCCEEDED.value,
                                                                         f"msg_{job.id}")  # fmt: skip
    assert verify_signature(owner.webhook_secret, headers[SIGNATURE_HEADER], body)
