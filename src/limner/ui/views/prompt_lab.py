"""Prompt lab / Batch: ideas from a theme, an editable list of prompts, a batch with progress and a zip.

With the server's batches (``POST /v1/batches``) the server runs the batch and builds the zip;
on a server without them the studio queues one job per prompt over ``POST /v1/jobs`` (what a
server batch does) and packs the zip itself, so the page works everywhere.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import streamlit as st

from limner.ui import session
from limner.ui.api_errors import ApiError
from limner.ui.batch_state import Batch, BatchItem
from limner.ui.batch_zip import BatchEntry, BatchPicture, build_zip, folder_name
from limner.ui.client import LimnerClient
from limner.ui.components.feedback import attempt, require
from limner.ui.components.models import model_field
from limner.ui.features import BATCHES, PROMPT_IDEAS
from limner.ui.job_spec import JobSpec, parse_size

ROWS = "lab.rows"
BATCH = "lab.batch"
ZIP = "lab.zip"
COLUMNS = ("title", "prompt", "negative_prompt")
POLL_SECONDS = 0.5


def ideas_from(answer: Any) -> list[dict[str, str]]:
    """Rows from the ideas endpoint's answer: a list of ideas, or ``{"ideas": [...]}``/``{"items": [...]}``."""
    items = (answer.get("ideas") or answer.get("items") or []) if isinstance(answer, dict) else answer
    rows = []
    for idea in items if isinstance(items, list) else []:
        if isinstance(idea, dict) and idea.get("prompt"):
            rows.append({column: str(idea.get(column) or "") for column in COLUMNS})
    return rows


def ideation() -> None:
    st.subheader("1. Ideas")
    features = session.features()
    if features.has(PROMPT_IDEAS):
        ideas_form()
    if features.has(BATCHES):
        if not features.has(PROMPT_IDEAS):
            st.caption(
                "This server writes ideas only as part of a batch (it has no `POST /v1/prompts/ideas` to draft "
                "them first): let it write and draw them in one go, or write your own prompts in the table below."
            )
        theme_batch_form()
    if not features.has(PROMPT_IDEAS) and not features.has(BATCHES):
        require(features, PROMPT_IDEAS, what="Write your prompts in the table below instead.")


def ideas_form() -> None:
    """Ask the server for ideas to edit before running them."""
    st.markdown("**Draft ideas, edit them, then run**: the ideas land in the table below; nothing is drawn yet.")
    with st.form("ideas"):
        left, middle, right = st.columns((3, 1, 1))
        theme = left.text_input("Theme", key="lab.ideas_theme", placeholder="cyberpunk city")
        count = middle.number_input("How many", 1, 50, value=5, key="lab.ideas_count")
        offline = right.checkbox(
            "Offline ideas", key="lab.ideas_offline", help="Use the offline generator, not an LLM."
        )
        asked = st.form_submit_button("Suggest prompts to edit", icon=":material/edit_note:")
    if asked:
        body = {"theme": theme.strip() or None, "count": int(count), "offline": offline}
        answer = attempt(partial(session.client().post_json, PROMPT_IDEAS.path, body))
        rows = ideas_from(answer) if answer is not None else []
        if answer is not None and not rows:
            st.warning("The server answered with no usable ideas.")
        if rows:
            session.remember(ROWS, rows)
            st.session_state["lab.editor_version"] = st.session_state.get("lab.editor_version", 0) + 1


def theme_batch_form() -> None:
    """The server writes ``count`` ideas about a theme (with its LLM, or offline) and queues them at once."""
    st.markdown("**Or write and draw in one go**: the server writes the ideas and draws them at once, unseen.")
    with st.form("theme_batch"):
        left, middle, right = st.columns((3, 1, 1))
        theme = left.text_input("Theme", key="lab.theme", placeholder="cyberpunk city")
        count = middle.number_input("How many", 1, 100, value=4, key="lab.count")
        offline = right.checkbox("Offline ideas", key="lab.offline", help="Use the offline generator, not an LLM.")
        go = st.form_submit_button("Write and draw them", icon=":material/lightbulb:")
    if go:
        body = {"theme": theme.strip() or None, "count": int(count), "offline": offline}
        answer = attempt(partial(session.client().post_json, BATCHES.path, body))
        if answer is not None:
            session.forget(ZIP)
            session.remember(BATCH, batch_from_server(theme.strip() or "ideas", answer))


def prompt_table() -> list[dict[str, str]]:
    st.subheader("2. Prompts")
    st.caption("One row per prompt: type or paste into the table, add rows with +, edit anything.")
    rows = session.recall(ROWS, list) or [{"title": "", "prompt": "", "negative_prompt": ""}]
    edited = st.data_editor(
        rows,
        num_rows="dynamic",
        width="stretch",
        key=f"lab.editor.{st.session_state.get('lab.editor_version', 0)}",
        column_config={
            "title": st.column_config.TextColumn("Title", width="small"),
            "prompt": st.column_config.TextColumn("Prompt", width="large", required=True),
            "negative_prompt": st.column_config.TextColumn("Negative prompt", width="medium"),
        },
    )
    return [
        {column: str(row.get(column) or "") for column in COLUMNS}
        for row in edited
        if isinstance(row, dict) and str(row.get("prompt") or "").strip()
    ]


def batch_from_server(title: str, answer: Any) -> Batch:
    """A ``BatchOut`` answer as the page's batch (items keep their server-side status and pictures)."""
    items = []
    for item in answer.get("items") or [] if isinstance(answer, dict) else []:
        idea = item.get("idea") or {}
        items.append(
            BatchItem(
                str(idea.get("title") or item.get("folder") or ""),
                str(idea.get("prompt") or ""),
                str(idea.get("negative_prompt") or ""),
                item.get("job_id"),
                str(item.get("status") or "queued"),
                item.get("error"),
                tuple(item.get("result_image_ids") or ()),
            )
        )
    return Batch(title, tuple(items), str(answer["id"]), str(answer.get("download_url") or ""))


def submit_server_batch(client: LimnerClient, title: str, rows: list[dict[str, str]], base: JobSpec) -> Batch:
    """The server runs the batch: one request with the edited ideas and the shared settings."""
    ideas = [
        {
            "title": row["title"].strip() or row["prompt"].strip()[:60],
            "prompt": row["prompt"].strip(),
            "negative_prompt": row["negative_prompt"].strip(),
        }
        for row in rows
    ]
    body: dict[str, Any] = {"ideas": ideas, "num_images": base.num_images or 1}
    if base.width and base.height:
        body["size"] = f"{base.width}x{base.height}"
    for name in ("model", "steps", "seed"):
        if getattr(base, name) is not None:
            body[name] = getattr(base, name)
    return batch_from_server(title, client.post_json(BATCHES.path, body))


def submit_batch(client: LimnerClient, title: str, rows: list[dict[str, str]], base: JobSpec) -> Batch:
    """Queue one job per prompt; a refused item is recorded and the batch goes on."""
    items = []
    for index, row in enumerate(rows):
        seed = base.seed + index if base.seed is not None else None
        spec = JobSpec(
            prompt=row["prompt"].strip(),
            negative_prompt=row["negative_prompt"].strip(),
            model=base.model,
            width=base.width,
            height=base.height,
            steps=base.steps,
            seed=seed,
            num_images=base.num_images,
        )
        item_title = row["title"].strip() or f"item {index + 1}"
        try:
            job = client.submit(spec)
        except ApiError as error:
            if error.unauthenticated:
                raise
            items.append(BatchItem(item_title, spec.prompt, spec.negative_prompt, None, "rejected", error.readable()))
        else:
            items.append(BatchItem(item_title, spec.prompt, spec.negative_prompt, job.id, job.status))
    return Batch(title, tuple(items))


def batch_form(rows: list[dict[str, str]]) -> None:
    st.subheader("3. Batch")
    with st.form("batch"):
        title = st.text_input("Batch title", key="lab.title", placeholder="my batch")
        left, middle, right, last = st.columns(4)
        model = model_field("Model", "lab.model", container=left)
        size = middle.text_input("Size", key="lab.size", placeholder="model default")
        steps = right.number_input("Steps", 1, 1000, value=None, key="lab.steps", placeholder="default")
        seed = last.number_input("First seed", 0, 2**32 - 1, value=None, key="lab.seed", placeholder="random")
        per_prompt = left.number_input("Images per prompt", 1, 16, value=1, key="lab.per_prompt")
        send = st.form_submit_button(
            f"Run {len(rows)} prompt{'s' if len(rows) != 1 else ''}",
            type="primary",
            icon=":material/play_arrow:",
            disabled=not rows,
        )
    if not send:
        return
    try:
        dimensions = parse_size(size)
    except ValueError as error:
        st.error(str(error))
        return
    base = JobSpec(
        model=model,
        width=dimensions[0] if dimensions else None,
        height=dimensions[1] if dimensions else None,
        steps=int(steps) if steps else None,
        seed=int(seed) if seed is not None else None,
        num_images=int(per_prompt),
    )
    session.forget(ZIP)
    client = session.client()
    if session.features().has(BATCHES):
        batch = attempt(partial(submit_server_batch, client, title.strip() or "batch", rows, base))
    else:
        batch = submit_batch(client, title.strip() or "batch", rows, base)
    if batch is not None:
        session.remember(BATCH, batch)


def refresh(client: LimnerClient, batch: Batch) -> Batch:
    if batch.server_id:
        return batch_from_server(batch.title, client.get_json(f"{BATCHES.path}/{batch.server_id}"))
    items = []
    for item in batch.items:
        if item.finished or item.job_id is None:
            items.append(item)
            continue
        job = client.job(item.job_id)
        items.append(
            BatchItem(
                item.title, item.prompt, item.negative_prompt, item.job_id, job.status, job.error, job.result_image_ids
            )
        )
    return Batch(batch.title, tuple(items))


def follow_batch() -> Batch | None:
    """Poll the batch's jobs until all have ended, with an overall progress bar and a status table."""
    batch = session.recall(BATCH, Batch)
    if batch is None:
        return None
    client = session.client()
    bar = st.progress(0.0)
    table = st.empty()
    while True:
        done = sum(item.finished for item in batch.items)
        bar.progress(done / len(batch.items) if batch.items else 1.0, text=f"{done} of {len(batch.items)} done")
        table.dataframe(
            [
                {"title": item.title, "status": item.status, "images": len(item.image_ids), "error": item.error or ""}
                for item in batch.items
            ],
            width="stretch",
        )
        if batch.finished:
            break
        time.sleep(POLL_SECONDS)
        batch = refresh(client, batch)
        session.remember(BATCH, batch)
    return batch


def batch_pictures(batch: Batch) -> None:
    """The batch's pictures, a row per prompt, so a finished batch is seen, not only counted."""
    client = session.client()
    for item in batch.items:
        if not item.image_ids:
            continue
        st.markdown(f"**{item.title or item.prompt}**")
        row = st.columns(6)
        for column, image_id in zip(row, item.image_ids, strict=False):
            data = attempt(partial(client.thumbnail, image_id))
            if data is not None:
                column.image(data, width="stretch")


def collect(client: LimnerClient, batch: Batch) -> list[BatchEntry]:
    entries = []
    for item in batch.items:
        pictures = []
        for image_id in item.image_ids:
            details = client.details(image_id)
            pictures.append(
                BatchPicture(image_id, details.image.seed, client.image_bytes(image_id), details.parameters)
            )
        entries.append(
            BatchEntry(item.title, item.prompt, item.negative_prompt, item.status, item.error, tuple(pictures))
        )
    return entries


def archive_of(client: LimnerClient, batch: Batch) -> bytes:
    """The server's zip of its batch, or one packed here from the jobs' pictures and parameters."""
    if batch.server_id and batch.download_url:
        return client.get_bytes(batch.download_url)
    return build_zip(batch.title, collect(client, batch))


def download(batch: Batch) -> None:
    archive = session.recall(ZIP, bytes)
    if archive is None:
        archive = attempt(partial(archive_of, session.client(), batch))
        if archive is None:
            return
        session.remember(ZIP, archive)
    st.download_button(
        "Download the batch (zip)",
        archive,
        file_name=f"{folder_name(batch.title)}.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
        type="primary",
    )


def main() -> None:
    st.title("Prompt lab / Batch")
    ideation()
    rows = prompt_table()
    batch_form(rows)
    batch = follow_batch()
    if batch is not None and batch.finished:
        download(batch)
        batch_pictures(batch)


if __name__ == "__main__":
    main()
