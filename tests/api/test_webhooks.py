"""Completion webhooks: signed so the receiver can verify them, and never sent to internal addresses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from limner.api.app import create_app
from limner.core.errors import InvalidRequestError
from limner.engines.local.engine import LocalEngine
from limner.services.container import build_services
from limner.services.jobs.webhooks import (
    SIGNATURE_HEADER,
    WebhookRefusedError,
    WebhookSender,
    check_webhook_url,
    sign,
    verify_signature,
)
from tests.api.conftest import PASSWORD, Api, service_settings


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
    secrets = api.client.get("/v1/users/me/webhook-secret", headers=headers).json()
    secret = secrets["secret"]
    signature = request_headers[SIGNATURE_HEADER]
    assert verify_signature(secret, signature, payload)
    # A stock Standard Webhooks receiver verifies with the whsec_ form it is given.
    standardwebhooks = pytest.importorskip("standardwebhooks")
    lowered = {name.lower(): value for name, value in request_headers.items()}
    assert standardwebhooks.Webhook(secrets["standard_secret"]).verify(payload, lowered) == event
    assert not verify_signature("another users secret", signature, payload)
    assert not verify_signature(secret, signature, payload + b" ")


def test_stale_signatures_are_rejected() -> None:
    header = sign("s", 1_000, b"{}")
    assert verify_signature("s", header, b"{}", now=1_100)
    assert not verify_signature("s", header, b"{}", now=1_000 + 3600)
    assert not verify_signature("s", "garbage", b"{}")


INTERNAL_URLS = [
    "http://127.0.0.1:8000/hook",
    "http://127.1/hook",  # IPv4 shorthand for 127.0.0.1
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.1.1/hook",
    "http://[fd00:ec2::254]/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_webhook_urls_are_refused_unless_an_admin_allows_them(url: str) -> None:
    with pytest.raises(WebhookRefusedError) as refused:
        check_webhook_url(url, allow_private=False)
    assert refused.value.param == "webhook_url"
    assert "public internet addresses" in refused.value.message
    check_webhook_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/limner", "http://93.184.216.34:8080/x", "https://[2606:4700::1]/"]
)
def test_public_webhook_urls_pass_the_submission_check(url: str) -> None:
    check_webhook_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost"])
def test_webhook_urls_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(InvalidRequestError):
        check_webhook_url(url, allow_private=True)


class Recorder:
    """A transport that answers 204 and remembers every request: no socket is ever opened."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def client(self) -> httpx.Client:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(204)

        return httpx.Client(transport=httpx.MockTransport(handle))


def test_every_resolved_address_is_checked_at_send_time() -> None:
    """A name that resolves to a public and a loopback address (DNS rebinding) is not called."""
    recorder = Recorder()
    sender = WebhookSender(1, recorder.client(), resolver=lambda host, port: ["93.184.216.34", "127.0.0.1"])
    assert not sender.send("https://rebind.example/hook", "secret", {"type": "job.finished"})
    assert recorder.requests == []


def test_the_sender_connects_to_the_address_it_checked() -> None:
    recorder = Recorder()
    looked_up: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append((host, port))
        return ["93.184.216.34"]

    sender = WebhookSender(1, recorder.client(), resolver=resolver)
    assert sender.send("https://hooks.example.com:8443/limner?x=1", "secret", {"type": "job.finished"})
    assert looked_up == [("hooks.example.com", 8443)]
    (request,) = recorder.requests
    assert request.url.host == "93.184.216.34"
    assert request.url.port == 8443
    assert request.url.raw_path == b"/limner?x=1"
    assert request.headers["Host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert verify_signature("secret", request.headers[SIGNATURE_HEADER], request.content)


def test_a_loopback_url_is_not_sent_even_if_it_was_stored() -> None:
    recorder = Recorder()
    sender = WebhookSender(1, recorder.client(), resolver=lambda host, port: [host])
    assert not sender.send("http://127.0.0.1:9/hook", "secret", {})
    assert recorder.requests == []
    allowed = WebhookSender(1, recorder.client(), allow_private=True, resolver=lambda host, port: [])
    assert allowed.send("http://127.0.0.1:9/hook", "secret", {})
    assert str(recorder.requests[0].url) == "http://127.0.0.1:9/hook"


def test_jobs_with_internal_webhooks_are_refused_at_submission(
    tmp_path: Path, tiny_models: dict[str, Path], shared_engine: LocalEngine
) -> None:
    settings = service_settings(tmp_path, tiny_models["txt2img"], workers=0, webhook_allow_private=False,
                                admin_username="root", admin_password=PASSWORD)  # fmt: skip
    with TestClient(create_app(settings, build_services(settings, engine=shared_engine))) as client:
        headers = Api(client).login("root")
        for url in ("http://127.0.0.1:8000/hook", "http://localhost/hook", "http://169.254.169.254/"):
            body = {"prompt": "x", "steps": 2, "width": 64, "height": 64, "webhook_url": url}
            refused = client.post("/v1/jobs", json=body, headers=headers)
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["code"] == "webhook_url_refused"
            assert refused.json()["error"]["param"] == "webhook_url"
        assert client.get("/v1/jobs", headers=headers).json()["total"] == 0
        public = {"prompt": "x", "steps": 2, "width": 64, "height": 64, "webhook_url": "https://hooks.example.com/x"}
        assert client.post("/v1/jobs", json=public, headers=headers).status_code == 202
