"""Queue: my jobs (running, queued, recent) with Cancel and "Open result", refreshed every few seconds.

Why a page of its own: a job keeps running when its page is left; here a person finds it again,
stops one that is not wanted, or opens what it made in the gallery's lightbox.
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from limner.ui import navigation, session
from limner.ui.api_errors import humane
from limner.ui.api_types import Job
from limner.ui.components.feedback import attempt
from limner.ui.views.gallery import OPEN

REFRESH_SECONDS = 2.0
RECENT = 15
_ICONS = {
    "running": ":material/progress_activity:",
    "queued": ":material/schedule:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
    "canceled": ":material/cancel:",
}  # Material icons: the browser needs no emoji font


def describe(job: Job) -> str:
    """What the job is, in a line: the prompt (or the model being trained) and the task."""
    if job.kind == "train":
        name = job.training.get("name") or "a model"
        return f"Training **{name}**"
    prompt = str(job.request.get("prompt") or "").strip() or "(no prompt)"
    return f"**{prompt}** · {job.task or 'generate'}"


def row(job: Job) -> None:
    with st.container(border=True, key=f"queue-job-{job.id}"):
        text, actions = st.columns((4, 1))
        when = job.created_at.strftime("%H:%M:%S") if job.created_at else ""
        text.markdown(f"{_ICONS.get(job.status, '')} {describe(job)}  \n{job.status.capitalize()} · {when}")
        if job.status == "running":
            label = f"Step {job.step} of {job.total_steps}" if job.step else "Starting: loading the model"
            text.progress(min(max(job.progress, 0.0), 1.0), text=label)
        elif job.status == "queued" and job.queue_position:
            text.caption(f"Position {job.queue_position} in the queue")
        if job.status == "failed" and job.error:
            text.caption(humane(job.error))
        cancel = not job.finished and actions.button("Cancel", key=f"queue.cancel:{job.id}", icon=":material/cancel:")
        if cancel and attempt(partial(session.client().cancel, job.id)) is not None:
            st.toast("Canceled.")
            st.rerun()
        if job.result_image_ids and actions.button(
            "Open result", key=f"queue.open:{job.id}", icon=":material/open_in_full:"
        ):
            session.remember(OPEN, job.result_image_ids[0])
            st.switch_page(navigation.GALLERY.path)


@st.fragment(run_every=REFRESH_SECONDS)
def jobs_list() -> None:
    jobs = attempt(partial(session.client().jobs, limit=50))
    if jobs is None:
        return
    running = [job for job in jobs if job.status == "running"]
    queued = [job for job in jobs if job.status == "queued"]
    recent = [job for job in jobs if job.finished][:RECENT]
    for title, group, empty in (
        ("Running", running, "Nothing is running."),
        ("Queued", queued, "Nothing is waiting."),
        ("Recent", recent, "No finished jobs yet."),
    ):
        st.subheader(f"{title} ({len(group)})")
        if not group:
            st.caption(empty)
        for job in group:
            row(job)


def main() -> None:
    st.title("Queue")
    st.caption(f"Your jobs, newest first; this list refreshes every {REFRESH_SECONDS:.0f} s.")
    jobs_list()


if __name__ == "__main__":
    main()
