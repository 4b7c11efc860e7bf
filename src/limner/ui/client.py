"""The typed REST client every page uses: one method per API operation the studio needs.

Why a client class instead of ``httpx`` calls in pages: the base URL, the bearer token, the
error envelope and the progress stream are handled once here; pages get dataclasses back or
an :class:`~limner.ui.api_errors.ApiError` with a sentence to show.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse

from limner.ui.api_errors import ApiError, unreachable
from limner.ui.api_types import (
    KEEPALIVE,
    Capabilities,
    ImageDetails,
    ImageInfo,
    ImagePage,
    ImageQuery,
    Job,
    JobEvent,
    ServerStatus,
    User,
)
from limner.ui.features import ServerFeatures
from limner.ui.job_spec import JobSpec

_METRIC = re.compile(r'^(limner_queue_depth|limner_jobs)(?:\{status="(\w+)"\})?\s+([0-9.eE+-]+)$')
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Upload:
    """A picture the person chose: its bytes and file name (the server checks the format)."""

    name: str
    data: bytes


class LimnerClient:
    """Talks to one limner server as one signed-in person (or anonymously, for login and health)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._timeout = timeout
        self._transport = transport

    # -- plumbing -------------------------------------------------------------------------

    def _client(self, timeout: httpx.Timeout | float | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout if timeout is not None else self._timeout,
            transport=self._transport,
            trust_env=False,  # a loopback or LAN server must not be sent through a proxy from the environment
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            with self._client() as client:
                response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, type(exc).__name__ + (f": {exc}" if str(exc) else "")) from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # -- generic access for optional features (characters, models, trainings ...) ----------

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json("GET", path, params=params)

    def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._json("POST", path, json=dict(body))

    def post_form(self, path: str, fields: Mapping[str, str], files: Sequence[tuple[str, Upload]]) -> Any:
        """A multipart form; a field name may repeat (several pictures under ``images``)."""
        parts = [(name, (upload.name, upload.data)) for name, upload in files]
        return self._json("POST", path, data=dict(fields), files=parts)

    def get_bytes(self, path: str) -> bytes:
        return self._request("GET", path).content

    def delete(self, path: str) -> None:
        self._request("DELETE", path)

    # -- account --------------------------------------------------------------------------

    def login(self, username: str, password: str) -> str:
        """The OAuth2 password flow; returns the access token (the client does not keep it)."""
        data = self._json("POST", "/v1/auth/token", data={"username": username, "password": password})
        return str(data["access_token"])

    def register(self, username: str, password: str) -> User:
        return User.model_validate(self.post_json("/v1/auth/register", {"username": username, "password": password}))

    def me(self) -> User:
        return User.model_validate(self.get_json("/v1/users/me"))

    # -- server ---------------------------------------------------------------------------

    def features(self) -> ServerFeatures:
        """Routes from ``/openapi.json``; a server that hides it counts as having no optional feature."""
        try:
            return ServerFeatures.from_openapi(self.get_json("/openapi.json"))
        except ApiError as error:
            if error.route_missing:
                return ServerFeatures(frozenset())
            raise

    def status(self) -> ServerStatus:
        """Health, readiness and queue numbers; none of these needs a login."""
        version = str(self.get_json("/healthz").get("version", "?"))
        try:
            with self._client() as client:
                ready = client.get("/readyz")
                metrics = client.get("/metrics")
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, type(exc).__name__) from exc
        ready_body = ready.json() if ready.headers.get("content-type", "").startswith("application/json") else {}
        depth, by_status = _parse_metrics(metrics.text if metrics.status_code == 200 else "")
        return ServerStatus(
            version=version,
            ready=ready.status_code == 200,
            checks={str(key): str(value) for key, value in (ready_body.get("checks") or {}).items()},
            queue_depth=depth,
            jobs_by_status=by_status,
        )

    def capabilities(self) -> Capabilities | None:
        """What will run here (``GET /v1/capabilities``); ``None`` from a server too old to say."""
        try:
            return Capabilities.model_validate(self.get_json("/v1/capabilities"))
        except ApiError as error:
            if error.route_missing:
                return None
            raise

    # -- jobs -----------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> Job:
        """Queue a job (``202``); input pictures must already be uploads (their ids in the spec)."""
        return Job.model_validate(self._json("POST", "/v1/jobs", json=spec.body()))

    def job(self, job_id: str) -> Job:
        return Job.model_validate(self.get_json(f"/v1/jobs/{job_id}"))

    def jobs(self, status: str | None = None, limit: int = 20, kind: str | None = None) -> list[Job]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if kind:
            params["kind"] = kind
        return [Job.model_validate(item) for item in self.get_json("/v1/jobs", params).get("items") or ()]

    def cancel(self, job_id: str) -> Job:
        return Job.model_validate(self._json("POST", f"/v1/jobs/{job_id}/cancel"))

    def follow(self, job_id: str, timeout: float = 3600.0) -> Iterator[JobEvent]:
        """Progress of a job until it ends: server-sent events, or polling if the stream breaks.

        Also yields keep-alives (as the last known state) so the caller regains control at least
        every 15 s while a job waits in the queue.
        """
        deadline = time.monotonic() + timeout
        last = JobEvent(status="queued")
        try:
            for event in self._stream(job_id):
                last = event if not event.keepalive else last
                yield last
                if last.finished or time.monotonic() > deadline:
                    return
        except httpx.HTTPError:
            pass  # a proxy that buffers or cuts streams: fall back to polling below
        while time.monotonic() < deadline:
            last = JobEvent.of_job(self.job(job_id))
            yield last
            if last.finished:
                return
            time.sleep(POLL_SECONDS)

    def _stream(self, job_id: str) -> Iterator[JobEvent]:
        """The job's server-sent events, read by ``httpx-sse``.

        A keep-alive is an event named ``keepalive`` (SSE comments never reach a reader, neither
        here nor in a browser); it comes out as ``JobEvent(status="keepalive")``.
        """
        timeout = httpx.Timeout(self._timeout, read=45.0)  # the server sends a keep-alive every 15 s
        with self._client(timeout) as client, connect_sse(client, "GET", f"/v1/jobs/{job_id}/events") as source:
            if source.response.status_code >= 400:
                source.response.read()
                raise _error_of(source.response)
            for message in source.iter_sse():
                if message.event == KEEPALIVE:
                    yield JobEvent(status=KEEPALIVE)
                    continue
                try:
                    payload = message.json()
                except json.JSONDecodeError:
                    continue
                if isinstance(payload, dict):
                    yield JobEvent.model_validate(payload)

    # -- gallery --------------------------------------------------------------------------

    def images(self, query: ImageQuery | None = None) -> ImagePage:
        return ImagePage.model_validate(self.get_json("/v1/images", (query or ImageQuery()).params()))

    def details(self, image_id: str) -> ImageDetails:
        return ImageDetails.model_validate(self.get_json(f"/v1/images/{image_id}/metadata"))

    def image_bytes(self, image_id: str) -> bytes:
        return self._request("GET", f"/v1/images/{image_id}").content

    def thumbnail(self, image_id: str) -> bytes:
        return self._request("GET", f"/v1/images/{image_id}/thumbnail").content

    def delete_image(self, image_id: str) -> None:
        self.delete(f"/v1/images/{image_id}")

    def upload(self, upload: Upload, param: str = "file") -> ImageInfo:
        """Store a picture for use as a job input; errors name ``param`` (e.g. ``init_image``)."""
        try:
            return ImageInfo.model_validate(self.post_form("/v1/uploads", {}, [("file", upload)]))
        except ApiError as exc:
            if exc.param in (None, "file"):
                exc.param = param
            raise


def _error_of(response: httpx.Response) -> ApiError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return ApiError.from_response(response.status_code, body, response.headers.get("retry-after"))


def _parse_metrics(text: str) -> tuple[int | None, dict[str, int]]:
    depth: int | None = None
    by_status: dict[str, int] = {}
    for line in text.splitlines():
        match = _METRIC.match(line.strip())
        if not match:
            continue
        name, status, value = match.groups()
        if name == "limner_queue_depth":
            depth = int(float(value))
        elif status:
            by_status[status] = int(float(value))
    return depth, by_status
