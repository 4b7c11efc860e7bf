"""Completion webhooks are delivered with a signature the receiver can verify."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from limner.services.jobs.webhooks import SIGNATURE_HEADER, sign, verify_signature
from tests.api.conftest import Api


class Receiver:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((dict(self.headers), body))
                receiver.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def test_webhook_is_signed_with_the_owners_secret(api: Api, receiver: Receiver) -> None:
    headers = api.as_user("bob")
    body = {"prompt": "x", "steps": 2, "width": 64, "height": 64, "webhook_url": receiver.url}
    job = api.client.post("/v1/jobs", json=body, headers=headers).json()
    assert receiver.arrived.wait(60)
    request_headers, payload = receiver.calls[0]
    event = json.loads(payload)
    assert event["type"] == "job.finished"
    assert event["job_id"] == job["id"]
    assert event["status"] == "succeeded"
    secret = api.client.get("/v1/users/me/webhook-secret", headers=headers).json()["secret"]
    signature = request_headers[SIGNATURE_HEADER]
    assert verify_signature(secret, signature, payload)
    assert not verify_signature("another users secret", signature, payload)
    assert not verify_signature(secret, signature, payload + b" ")


def test_stale_signatures_are_rejected() -> None:
    header = sign("s", 1_000, b"{}")
    assert verify_signature("s", header, b"{}", now=1_100)
    assert not verify_signature("s", header, b"{}", now=1_000 + 3600)
    assert not verify_signature("s", "garbage", b"{}")
