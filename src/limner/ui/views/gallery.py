"""Gallery: every picture of the signed-in person, newest first; filter, search, open, reuse, delete."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from limner.ui import navigation, session
from limner.ui.api_types import ImageDetails, ImageQuery
from limner.ui.components.feedback import attempt, succeeded
from limner.ui.components.images import thumbnail_grid
from limner.ui.job_spec import TASKS, spec_from_parameters

OPEN = "gal.open"
CONFIRM_DELETE = "gal.confirm_delete"
PAGE_SIZE = 24
_ANY = "any"


def _start_of(day: date | None, later: int = 0) -> datetime | None:
    return datetime.combine(day + timedelta(days=later), time.min, tzinfo=UTC) if day else None


def filters() -> ImageQuery:
    with st.container(border=True):
        q = st.text_input("Search prompts", key="gal.q", placeholder="words that must all appear in the prompt")
        model_col, task_col, kind_col, since_col, until_col = st.columns(5)
        model = model_col.text_input("Model", key="gal.model", placeholder="any")
        task = task_col.selectbox("Task", (_ANY, *TASKS, "character"), key="gal.task")
        kind = kind_col.selectbox("Kind", (_ANY, "output", "upload"), key="gal.kind")
        since = since_col.date_input("From", value=None, key="gal.since")
        until = until_col.date_input("Until", value=None, key="gal.until")
    page = int(st.session_state.get("gal.page", 1))
    return ImageQuery(
        model=model.strip() or None,
        task=None if task == _ANY else task,
        kind=None if kind == _ANY else kind,
        since=_start_of(since if isinstance(since, date) else None),
        until=_start_of(until if isinstance(until, date) else None, later=1),
        q=q.strip() or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )


def parameter_rows(details: ImageDetails) -> dict[str, str]:
    """The parameters a person looks for first, in reading order (everything else is in the JSON below)."""
    params = details.parameters
    request = dict(params.get("request") or {})
    image = details.image
    rows: dict[str, Any] = {
        "Prompt": image.prompt or request.get("prompt", ""),
        "Negative prompt": request.get("negative_prompt", ""),
        "Task": image.task or request.get("task"),
        "Model": params.get("model_name") or image.model,
        "Seed": image.seed,
        "Size": f"{image.width}x{image.height}",
        "Steps": request.get("steps"),
        "Guidance": request.get("guidance_scale"),
        "Scheduler": params.get("scheduler") or request.get("scheduler"),
        "Strength": request.get("strength") if request.get("task") in ("img2img", "inpaint") else None,
        "LoRAs": ", ".join(f"{lo['ref']}:{lo.get('weight', 1)}" for lo in request.get("loras") or ()) or None,
        "Created": image.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") if image.created_at else None,
        "Id": image.id,
    }
    return {key: str(value) for key, value in rows.items() if value not in (None, "")}


def actions(details: ImageDetails, data: bytes) -> None:
    image = details.image
    download, reuse, img2img, edit, delete, close = st.columns(6)
    download.download_button(
        "Download", data, file_name=f"{image.id}.png", mime="image/png", icon=":material/download:", key="gal.download"
    )
    if reuse.button(
        "Reuse",
        icon=":material/replay:",
        help="Load these settings into Generate",
        key="gal.reuse",
        disabled=not details.parameters.get("request"),
    ):
        session.hand_off("generate", spec_from_parameters(details.parameters))
        st.switch_page(navigation.GENERATE.path)
    if img2img.button("img2img", icon=":material/brush:", help="Start a new picture from this one", key="gal.img2img"):
        spec = spec_from_parameters(details.parameters, keep_seed=False)
        session.hand_off("generate", replace(spec, task="img2img", init_image_id=image.id, width=None, height=None))
        st.switch_page(navigation.GENERATE.path)
    if edit.button("Edit", icon=":material/auto_fix_high:", help="Open this picture in Edit", key="gal.edit"):
        session.hand_off("edit", image.id)
        st.switch_page(navigation.EDIT.path)
    if delete.button("Delete", icon=":material/delete:", key="gal.delete"):
        session.remember(CONFIRM_DELETE, image.id)
    if close.button("Close", icon=":material/close:", key="gal.close"):
        session.forget(OPEN)
        st.rerun()
    if session.recall(CONFIRM_DELETE, str) == image.id:
        st.warning("Delete this picture for good?")
        yes, no, _ = st.columns((1, 1, 4))
        confirmed = yes.button("Yes, delete", type="primary", key="gal.delete_yes")
        if confirmed and succeeded(partial(session.client().delete_image, image.id)):
            session.forget(CONFIRM_DELETE)
            session.forget(OPEN)
            st.toast("Deleted.")
            st.rerun()
        if no.button("Keep it", key="gal.delete_no"):
            session.forget(CONFIRM_DELETE)
            st.rerun()


def opened(image_id: str) -> None:
    """One picture in full: the image, its parameters, and what can be done with it."""
    client = session.client()
    details = attempt(partial(client.details, image_id))
    data = attempt(partial(client.image_bytes, image_id))
    if details is None or data is None:
        session.forget(OPEN)
        return
    with st.container(border=True):
        picture, info = st.columns((1, 1))
        picture.image(data, width="stretch")
        with info:
            st.subheader("Parameters")
            st.table(pd.DataFrame({"Value": parameter_rows(details)}))
            with st.expander("Everything stored with the picture (JSON)"):
                st.json(details.parameters)
        actions(details, data)


def main() -> None:
    st.title("Gallery")
    open_id = session.recall(OPEN, str)
    if open_id:
        opened(open_id)
    query = filters()
    page = attempt(partial(session.client().images, query))
    if page is None:
        return
    if not page.items and query.offset > 0:  # the filters changed under a later page: back to the first
        st.session_state["gal.page"] = 1
        st.rerun()
    pages = max(1, -(-page.total // PAGE_SIZE))
    st.caption(f"{page.total} picture{'s' if page.total != 1 else ''}, newest first")
    if not page.items:
        st.info("No pictures match.")
    clicked = thumbnail_grid(page.items, key="gal", columns=6, open_label="Open")
    if clicked:
        session.remember(OPEN, clicked)
        session.forget(CONFIRM_DELETE)
        st.rerun()
    if pages > 1:
        st.number_input("Page", 1, pages, key="gal.page")


if __name__ == "__main__":
    main()
