"""Jobs: create, read, list, cancel, follow (SSE and WebSocket).

``POST /v1/jobs`` stores the job before answering 202 with its id and queue position. With
``Accept: image/png`` it waits and answers the first image's bytes instead (a sync convenience).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, WebSocket, WebSocketDisconnect, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from limner.api.deps import CredentialDep, GeneratorDep, ReaderDep, ServicesDep, SessionDep, authenticate
from limner.api.params import Limit, Offset
from limner.api.responses import AUTHENTICATED, SYNC_JOB, WITH_BODY, error_responses
from limner.api.schemas import JobCreate, JobOut, Page
from limner.api.waiting import submit_and_wait
from limner.core.errors import LimnerError, UnsupportedMediaTypeError
from limner.core.jobs import JobKind
from limner.db.models import Job, JobStatus, User
from limner.services.auth.api_keys import Scope
from limner.services.container import Services
from limner.services.jobs.queue import JobFilter
from limner.services.jobs.worker import job_event

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=error_responses(AUTHENTICATED))

SSE_KEEPALIVE_SECONDS = 15.0
SSE_POLL_SECONDS = 1.0  # when jobs run in other processes


def _enqueue(
    services: Services,
    token: str,
    body: JobCreate,
    idempotency_key: str | None,
    *,
    position: bool = True,
    job_id: str | None = None,
) -> tuple[JobOut, bool]:
    """Authenticate the credential and store the job, in one thread and one session; its place in line is
    counted only for an answer that shows it (not a sync one).

    Why the user is looked up here and not by a dependency: a dependency's lookup ran in a thread of its
    own, with a session of its own, before this one; one hop and one session fewer on every job.
    """
    with services.sessions() as session:
        user = authenticate(services, session, token).require(Scope.GENERATE)
        job, created = services.generation_jobs.queue(
            session, user, body.generation_fields(), body.preset,
            idempotency_key=idempotency_key,
            webhook_url=str(body.webhook_url) if body.webhook_url else None,
            deadline_seconds=body.deadline_seconds,
            job_id=job_id,
        )  # fmt: skip
        return JobOut.of(job, services.queue.position(session, job) if position else None), created


async def json_body(request: Request) -> None:
    """Refuse a non-JSON body before it is parsed, saying how input pictures are sent instead (on the
    event loop: a header check needs no thread)."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaTypeError(
            "send the job as JSON; upload input pictures first with POST /v1/uploads and give their ids "
            "(init_image_id, mask_image_id, reference_image_ids)",
            param="body",
        )


@router.post(
    "",
    dependencies=[Depends(json_body)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    summary="Queue a generation job (input pictures: ids from POST /v1/uploads or the gallery)",
    responses={
        200: {"content": {"image/png": {}}, "description": "With Accept: image/png, the first image"},
        **error_responses(WITH_BODY, 404, 415, SYNC_JOB),
    },
)
async def create_job(
    body: JobCreate,
    request: Request,
    services: ServicesDep,
    token: CredentialDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Response:
    if "image/png" in request.headers.get("accept", ""):
        return await _sync_answer(services, token, body, idempotency_key)
    job, created = await run_in_threadpool(_enqueue, services, token, body, idempotency_key)
    headers = {"Location": f"/v1/jobs/{job.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(job.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED, headers=headers)


async def _sync_answer(services: Services, token: str, body: JobCreate, idempotency_key: str | None) -> Response:
    """Store the job, wait for it and answer its first image's bytes.

    The images are read by id without their gallery rows: the job is the caller's own (stored now, or
    an earlier one of theirs that the Idempotency-Key replays), and so are the images it made.
    """

    async def submit(job_id: str) -> str:
        job, _created = await run_in_threadpool(_enqueue, services, token, body, idempotency_key, position=False,
                                                 job_id=job_id)  # fmt: skip
        return job.id

    finished = await submit_and_wait(services, submit, services.settings.sync_wait_seconds)
    image_ids = finished.result_image_ids
    data = services.gallery.recent_output_bytes(image_ids[0])
    if data is None:  # made by a worker in another process, or pushed out by newer pictures
        data = await run_in_threadpool(services.gallery.output_bytes, image_ids[0])
    return Response(data, media_type="image/png", headers={"X-Limner-Job-Id": finished.job_id,
                                                            "X-Limner-Image-Ids": ",".join(image_ids)})  # fmt: skip


@router.get("", response_model=Page[JobOut], summary="My jobs, newest first")
def list_jobs(
    user: ReaderDep,
    services: ServicesDep,
    session: SessionDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    task: Annotated[str | None, Query(max_length=32)] = None,
    kind: Annotated[JobKind | None, Query(description="generate or train")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[JobOut]:
    filters = JobFilter(status=status_filter, task=task, kind=kind, limit=limit, offset=offset)
    jobs, total = services.queue.list_jobs(session, user, filters)
    items = [JobOut.of(job, services.queue.position(session, job)) for job in jobs]
    return Page[JobOut](items=items, total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobOut, responses=error_responses(404))
def get_job(job_id: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> JobOut:
    job = services.queue.get(session, user, job_id)
    return JobOut.of(job, services.queue.position(session, job))


@router.post("/{job_id}/cancel", response_model=JobOut, summary="Cancel a queued or running job",
             responses=error_responses(404, 409))  # fmt: skip
def cancel_job(job_id: str, user: GeneratorDep, services: ServicesDep, session: SessionDep) -> JobOut:
    job = services.queue.request_cancel(session, user, job_id)
    services.worker.cancel_running(job.id)
    if job.status == JobStatus.CANCELED.value:
        services.events.publish(job.id, job_event(job))
    return JobOut.of(job)


@router.get("/{job_id}/events", summary="Progress as server-sent events until the job ends",
            response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}, **error_responses(404)})  # fmt: skip
async def job_events(job_id: str, user: ReaderDep, services: ServicesDep) -> EventSourceResponse:
    """One event per state change, named by the job's status; a ``keepalive`` event while it is quiet
    (an event, not a comment, so that clients see the connection is alive and can act between events)."""
    await run_in_threadpool(_visible_job, services, user, job_id)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for event in _follow(services, user, job_id):
            if event is _KEEPALIVE:
                yield ServerSentEvent(data=json.dumps(_KEEPALIVE), event="keepalive")
                continue
            yield ServerSentEvent(data=json.dumps(event, default=str), event=str(event.get("status", "progress")))

    return EventSourceResponse(stream(), headers={"Cache-Control": "no-cache"})


@router.websocket("/{job_id}/ws")
async def job_websocket(websocket: WebSocket, job_id: str) -> None:
    """Progress over a WebSocket. Browsers cannot set headers here, so ``?token=`` is accepted too."""
    services: Services = websocket.app.state.services
    token = websocket.query_params.get("token") or _bearer(websocket.headers.get("authorization"))
    try:
        user = await run_in_threadpool(_ws_user, services, token)
        await run_in_threadpool(_visible_job, services, user, job_id)
    except LimnerError as exc:
        await websocket.close(code=4401 if exc.code == "unauthenticated" else 4404, reason=str(exc)[:120])
        return
    await websocket.accept()
    try:
        async for event in _follow(services, user, job_id):
            if event is not _KEEPALIVE:
                await websocket.send_json(json.loads(json.dumps(event, default=str)))
    except WebSocketDisconnect:
        return
    await websocket.close()


_KEEPALIVE: dict[str, Any] = {"status": "keepalive"}


async def _follow(services: Services, user: User, job_id: str) -> AsyncIterator[dict[str, Any]]:
    """Current state first, then live events, until the job has finished.

    Events of this process's worker arrive on the bus. A job run by a ``limner worker`` elsewhere
    publishes nothing here, so then the job row (its heartbeat writes step and status) is polled
    every second and each change becomes an event.
    """
    local_only = services.settings.workers > 0 and not services.settings.external_workers
    poll = SSE_KEEPALIVE_SECONDS if local_only else SSE_POLL_SECONDS
    async with services.events.subscribe(job_id) as events:
        job = await run_in_threadpool(_visible_job, services, user, job_id)
        last = job_event(job)
        yield last
        if JobStatus(job.status).finished:
            return
        quiet_since = time.monotonic()
        while True:
            try:
                event = await asyncio.wait_for(events.get(), timeout=poll)
            except TimeoutError:
                job = await run_in_threadpool(_visible_job, services, user, job_id)
                stored = job_event(job)
                finished = JobStatus(job.status).finished
                if finished or (stored["status"], stored["step"]) != (last["status"], last.get("step")):
                    last = stored
                    quiet_since = time.monotonic()
                    yield stored
                    if finished:
                        return
                elif time.monotonic() - quiet_since >= SSE_KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield _KEEPALIVE
                continue
            last = event
            quiet_since = time.monotonic()
            yield event
            if JobStatus(event.get("status", "running")).finished:
                return


def _visible_job(services: Services, user: User, job_id: str) -> Job:
    with services.sessions() as session:
        return services.queue.get(session, user, job_id)


def _ws_user(services: Services, token: str | None) -> User:
    if not token:
        from limner.core.errors import AuthenticationError

        raise AuthenticationError("missing token")
    with services.sessions() as session:
        principal = authenticate(services, session, token)
        principal.require(Scope.READ)
        return principal.user


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None
