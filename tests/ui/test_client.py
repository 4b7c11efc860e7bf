"""The REST client against a live server: login, errors as sentences, jobs followed over SSE, gallery."""

from __future__ import annotations

import httpx
import pytest

from limner.ui.api_errors import ApiError
from limner.ui.api_types import ImageQuery
from limner.ui.client import LimnerClient, Upload, _parse_metrics
from limner.ui.features import CHARACTERS, ServerFeatures
from limner.ui.job_spec import JobSpec
from tests.api.live_server import LiveServer, free_port
from tests.ui.conftest import ADMIN, PASSWORD, png


@pytest.fixture
def client(server: LiveServer, token: str) -> LimnerClient:
    return LimnerClient(server.url, token)


def test_login_and_me(server: LiveServer) -> None:
    anonymous = LimnerClient(server.url)
    token = anonymous.login(ADMIN, PASSWORD)
    me = LimnerClient(server.url, token).me()
    assert me.username == ADMIN
    assert me.is_admin


def test_wrong_password_is_a_readable_error(server: LiveServer) -> None:
    with pytest.raises(ApiError) as caught:
        LimnerClient(server.url).login(ADMIN, "not the password")
    assert caught.value.status == 401
    assert caught.value.readable() == "The username or password is wrong, or your session has ended. Sign in again."


def test_unreachable_server_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiError) as caught:
        LimnerClient(url).status()
    assert caught.value.status == 0
    assert url in caught.value.readable()
    assert caught.value.readable().endswith("Check that the server is running and that this is its address.")


def test_status_and_features(client: LimnerClient) -> None:
    status = client.status()
    assert status.ready
    assert status.checks["database"] == "ok"
    assert status.queue_depth is not None
    features = client.features()
    assert "POST /v1/jobs" in features.routes
    assert features.has(CHARACTERS) == ("GET /v1/characters" in features.routes)


def test_submit_and_follow_to_the_end(client: LimnerClient) -> None:
    job = client.submit(JobSpec(prompt="a client test apple", steps=3, seed=11, num_images=2))
    events = list(client.follow(job.id, timeout=60))
    assert events[-1].status == "succeeded"
    assert any(event.step == 3 and event.total_steps == 3 for event in events)
    assert len(events[-1].result_image_ids) == 2
    details = client.details(events[-1].result_image_ids[1])
    assert details.image.seed == 12
    assert details.parameters["request"]["prompt"] == "a client test apple"
    assert client.image_bytes(details.image.id).startswith(b"\x89PNG")
    assert client.thumbnail(details.image.id)[:4] == b"RIFF"  # WebP
    found = client.images(ImageQuery(q="client test apple"))
    assert {image.id for image in found.items} == set(events[-1].result_image_ids)


def test_validation_error_names_the_field(client: LimnerClient) -> None:
    with pytest.raises(ApiError) as caught:
        client.submit(JobSpec(prompt="x", width=65, height=64))
    assert caught.value.status in (400, 422)
    assert "multiple of 8" in caught.value.readable()


def test_upload_refuses_a_non_picture_and_names_the_input(client: LimnerClient) -> None:
    with pytest.raises(ApiError) as caught:
        client.upload(Upload("notes.txt", b"not a picture"), param="init_image")
    assert caught.value.param == "init_image"
    assert caught.value.readable() == (
        "Start picture: that file is not a picture the server can read. Use a PNG, JPEG or WebP picture."
    )
    stored = client.upload(Upload("photo.png", png()), param="init_image")
    assert stored.kind == "upload"


def test_missing_route_is_recognised(client: LimnerClient) -> None:
    with pytest.raises(ApiError) as caught:
        client.get_json("/v1/no-such-feature")
    assert caught.value.route_missing


def _events_body(*messages: str) -> bytes:
    return "".join(messages).encode()


def test_follow_reads_the_event_stream_and_its_keepalives() -> None:
    body = _events_body(
        'event: running\ndata: {"status": "running", "step": 1, "total_steps": 2, "new_field": 1}\n\n',
        ": a comment is no event\n\n",
        'event: keepalive\ndata: {"status": "keepalive"}\n\n',
        "event: running\ndata: not json\n\n",
        'event: succeeded\ndata: {"status": "succeeded", "step": 2, "total_steps": 2, "result_image_ids": ["i1"]}\n\n',
        'event: running\ndata: {"status": "running"}\n\n',
    )
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = LimnerClient("http://limner.test", "t0k", transport=httpx.MockTransport(handler))
    events = list(client.follow("j1", timeout=5))
    assert [(event.status, event.step) for event in events] == [("running", 1), ("running", 1), ("succeeded", 2)]
    assert events[-1].result_image_ids == ("i1",)
    assert [request.url.path for request in seen] == ["/v1/jobs/j1/events"]
    assert seen[0].headers["accept"] == "text/event-stream"
    assert seen[0].headers["authorization"] == "Bearer t0k"


def test_follow_polls_when_the_answer_is_not_an_event_stream() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json={"buffered": "by a proxy"})
        return httpx.Response(200, json={"id": "j1", "status": "succeeded", "step": 2, "total_steps": 2})

    client = LimnerClient("http://limner.test", "t0k", transport=httpx.MockTransport(handler))
    events = list(client.follow("j1", timeout=5))
    assert [(event.status, event.step) for event in events] == [("succeeded", 2)]


def test_follow_reports_an_error_answer_as_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"type": "not_found", "code": "not_found", "message": "no job j9"}})

    client = LimnerClient("http://limner.test", "t0k", transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError) as caught:
        list(client.follow("j9", timeout=5))
    assert caught.value.status == 404


def test_metrics_parsing() -> None:
    text = 'limner_queue_depth 3.0\nlimner_jobs{status="running"} 1.0\n# HELP x\nlimner_jobs{status="failed"} 2.0\n'
    assert _parse_metrics(text) == (3, {"running": 1, "failed": 2})


def test_features_from_openapi() -> None:
    document = {"paths": {"/v1/characters": {"get": {}, "parameters": []}, "/v1/jobs": {"post": {}}}}
    features = ServerFeatures.from_openapi(document)
    assert features.routes == frozenset({"GET /v1/characters", "POST /v1/jobs"})
    assert features.has(CHARACTERS)


def test_error_without_envelope_still_reads() -> None:
    error = ApiError.from_response(502, "<html>Bad gateway</html>", retry_after="5")
    assert error.readable() == (
        "The server hit a problem it did not expect. Try again; if it keeps happening, tell an administrator. "
        "Try again in 5 s."
    )


@pytest.mark.parametrize(
    ("code", "message", "param", "expected"),
    [
        ("invalid_request", "Input should be less than or equal to 8192", "width", "Width: must be at most 8192."),
        ("invalid_request", "num_images: Input should be greater than or equal to 1", "num_images",
         "Number of pictures: must be at least 1."),
        ("invalid_request", "no default IP-Adapter for X; set LIMNER_IP_ADAPTER or pass --ip-adapter", "ip_adapter",
         "IP-Adapter: no default IP-Adapter for X; ask an administrator to set it up."),
        ("invalid_request", "unknown preset 'x' (see GET /v1/presets)", None, "Unknown preset 'x'."),
    ],
)  # fmt: skip
def test_validation_messages_are_cleaned_for_people(code: str, message: str, param: str | None, expected: str) -> None:
    error = ApiError(400, "invalid_request_error", code, message, param)
    text = error.readable()
    assert text == expected
    assert "LIMNER_" not in text
    assert "--" not in text
