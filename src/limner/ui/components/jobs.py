"""Submit a job, follow it with a progress bar, and show its pictures with their seeds.

Why the job id lives in session state: a click anywhere (Cancel included) re-runs the page
script and interrupts the loop that follows the stream; on the next run the page finds the id
and resumes following, so long work never freezes the page and no job is lost from view.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import partial
from typing import Any

import streamlit as st

from limner.ui import navigation, session
from limner.ui.api_errors import ApiError, humane
from limner.ui.api_types import JobEvent
from limner.ui.client import LimnerClient, Upload
from limner.ui.components.feedback import attempt, show_error
from limner.ui.job_spec import JobSpec, spec_from_parameters


@dataclass(frozen=True)
class TrackedJob:
    """A job a page submitted: its id and, once known, how it ended."""

    id: str
    status: str = "queued"
    image_ids: tuple[str, ...] = ()
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "canceled")


def upload_input(client: LimnerClient, upload: Upload | None, param: str) -> str | None:
    """Store a chosen picture as an upload and return its id (``None`` when there is none)."""
    if upload is None:
        return None
    return client.upload(upload, param=param).id


def start(key: str, spec: JobSpec) -> TrackedJob | None:
    """Queue the job and remember it under ``key``; an API error is shown and nothing is kept."""
    job = attempt(lambda: session.client().submit(spec))
    if job is None:
        return None
    tracked = TrackedJob(job.id, job.status)
    session.remember(key, tracked)
    return tracked


def progress_label(event: JobEvent, queue_position: int | None = None, finishing: str = "") -> str:
    """What the job is doing now, in words; the phase after the last step has its own sentence."""
    if event.status == "queued":
        return f"Queued (position {queue_position})" if queue_position else "Queued: waiting for the worker"
    if event.status == "running":
        if not event.total_steps:
            return "Starting: loading the model (the first picture after a start takes longest)"
        if event.step >= event.total_steps:
            return finishing or f"Step {event.step} of {event.total_steps}: decoding and saving the pictures"
        return f"Step {event.step} of {event.total_steps}"
    return event.status.capitalize()


def follow(key: str, finishing: str = "") -> TrackedJob | None:
    """Follow the job stored under ``key`` until it ends (progress bar, previews, Cancel); return its final state.

    ``finishing`` names what happens after the last step (a training saves its model).
    """
    tracked = session.recall(key, TrackedJob)
    if tracked is None or tracked.finished:
        return tracked
    client = session.client()
    controls = st.empty()  # emptied when the job ends, so no stale Cancel stays on the page
    if controls.button("Cancel", key=f"{key}:cancel", icon=":material/cancel:"):
        attempt(partial(client.cancel, tracked.id))
    bar = st.progress(0.0, text="Queued")
    preview = st.empty()
    last = JobEvent(status=tracked.status)
    try:
        for event in client.follow(tracked.id):
            last = event
            bar.progress(min(max(event.progress, 0.0), 1.0), text=progress_label(event, finishing=finishing))
            if event.preview:
                caption = f"Preview, step {event.step} of {event.total_steps}"
                preview.image(base64.b64decode(event.preview), caption=caption, width=256)
    except ApiError as error:
        if error.unauthenticated:
            raise
        show_error(error)  # e.g. the job was deleted: stop following it rather than fail on every run
        session.forget(key)
        return None
    finally:
        for placeholder in (controls, bar, preview):
            placeholder.empty()
    tracked = TrackedJob(tracked.id, last.status, last.result_image_ids, last.error)
    session.remember(key, tracked)
    return tracked


def outcome(tracked: TrackedJob) -> None:
    """Say how a finished job ended (errors in the server's words)."""
    if tracked.status == "failed":
        reason = humane(tracked.error) if tracked.error else "The server gave no reason."
        st.error(f"The job failed. {reason}", icon=":material/error:")
    elif tracked.status == "canceled":
        st.warning("The job was canceled.", icon=":material/cancel:")


def picture_caption(seed: int | None, step: Any = None) -> str:
    """``seed 42``; a training's validation picture by its step; never ``seed None``."""
    if seed is not None:
        return f"seed {seed}"
    return f"validation picture, step {step}" if step is not None else "picture"


def show_results(key: str, tracked: TrackedJob, columns: int = 4, reuse: bool = True) -> None:
    """The job's pictures in a grid, each with its seed, a download and "reuse these settings"."""
    outcome(tracked)
    if not tracked.image_ids:
        return
    client = session.client()
    grid = st.columns(columns)
    for index, image_id in enumerate(tracked.image_ids):
        details = attempt(partial(client.details, image_id))
        data = attempt(partial(client.image_bytes, image_id))
        if details is None or data is None:
            continue
        seed = details.image.seed
        with grid[index % len(grid)]:
            st.image(data, caption=picture_caption(seed, details.parameters.get("step")), width="stretch")
            st.download_button(
                "Download",
                data,
                file_name=f"{image_id}-{seed}.png" if seed is not None else f"{image_id}.png",
                mime="image/png",
                key=f"{key}:download:{image_id}",
                icon=":material/download:",
            )
            if reuse and st.button("Reuse these settings", key=f"{key}:reuse:{image_id}", icon=":material/replay:"):
                session.hand_off("generate", spec_from_parameters(details.parameters))
                st.switch_page(navigation.GENERATE.path)
