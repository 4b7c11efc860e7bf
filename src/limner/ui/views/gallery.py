"""Gallery: the signed-in person's results, newest first; filter, search, a lightbox, reuse, send, delete.

Uploads (start pictures, masks, training photos) are behind the Kind filter: by default the gallery
shows what was made. A picture opens in a lightbox (``st.dialog``) with Previous/Next over the
current page, its parameters, and buttons that send it to img2img, inpaint or Edit.
"""

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
PAGE_IDS = "gal.page_ids"  # the pictures of the current page, for Previous/Next in the lightbox
CONFIRM_DELETE = "gal.confirm_delete"
PAGE_SIZE = 24
_ANY = "any"
KINDS = {"output": "Results", "upload": "Uploads", "imported": "Imported", _ANY: "All"}


def _start_of(day: date | None, later: int = 0) -> datetime | None:
    return datetime.combine(day + timedelta(days=later), time.min, tzinfo=UTC) if day else None


def filters() -> ImageQuery:
    with st.container(border=True):
        q = st.text_input("Search prompts", key="gal.q", placeholder="words that must all appear in the prompt")
        model_col, task_col, kind_col, since_col, until_col = st.columns(5)
        model = model_col.text_input("Model", key="gal.model", placeholder="any")
        task = task_col.selectbox("Task", (_ANY, *TASKS, "character"), key="gal.task")
        kind = kind_col.selectbox(
            "Kind",
            tuple(KINDS),
            format_func=KINDS.__getitem__,
            key="gal.kind",
            help="Results are made pictures; uploads are start pictures, masks and training photos.",
        )
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
        "Kind": KINDS.get(image.kind, image.kind),
        "Created": image.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") if image.created_at else None,
        "Id": image.id,
    }
    return {key: str(value) for key, value in rows.items() if value not in (None, "")}


def _send_to_generate(details: ImageDetails, task: str) -> None:
    spec = spec_from_parameters(details.parameters, keep_seed=False)
    session.hand_off("generate", replace(spec, task=task, init_image_id=details.image.id, width=None, height=None))
    session.forget(OPEN)
    st.switch_page(navigation.GENERATE.path)


def actions(details: ImageDetails, data: bytes) -> None:
    image = details.image
    download, reuse, img2img, inpaint, edit, delete = st.columns(6)
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
        session.forget(OPEN)
        st.switch_page(navigation.GENERATE.path)
    if img2img.button("img2img", icon=":material/brush:", help="Start a new picture from this one", key="gal.img2img"):
        _send_to_generate(details, "img2img")
    if inpaint.button("Inpaint", icon=":material/format_paint:", help="Repaint part of it", key="gal.inpaint"):
        _send_to_generate(details, "inpaint")
    if edit.button("Edit", icon=":material/auto_fix_high:", help="Open this picture in Edit", key="gal.edit"):
        session.hand_off("edit", image.id)
        session.forget(OPEN)
        st.switch_page(navigation.EDIT.path)
    if delete.button("Delete", icon=":material/delete:", key="gal.delete"):
        session.remember(CONFIRM_DELETE, image.id)
    if session.recall(CONFIRM_DELETE, str) == image.id:
        st.warning("Delete this picture for good?")
        yes, no, _ = st.columns((1, 1, 2))
        confirmed = yes.button("Yes, delete", type="primary", key="gal.delete_yes")
        if confirmed and succeeded(partial(session.client().delete_image, image.id)):
            session.forget(CONFIRM_DELETE)
            session.forget(OPEN)
            st.toast("Deleted.")
            st.rerun()
        if no.button("Keep it", key="gal.delete_no"):
            session.forget(CONFIRM_DELETE)
            st.rerun()


def _neighbours(image_id: str) -> tuple[str | None, str | None]:
    ids = session.recall(PAGE_IDS, list) or []
    if image_id not in ids:
        return None, None
    index = ids.index(image_id)
    return (ids[index - 1] if index > 0 else None), (ids[index + 1] if index + 1 < len(ids) else None)


def _go(image_id: str) -> None:
    session.remember(OPEN, image_id)
    session.forget(CONFIRM_DELETE)


def _closed() -> None:
    session.forget(OPEN)
    session.forget(CONFIRM_DELETE)


def opened(image_id: str) -> None:
    """One picture in full: the image, Previous/Next, its parameters, and what can be done with it."""
    client = session.client()
    details = attempt(partial(client.details, image_id))
    data = attempt(partial(client.image_bytes, image_id))
    if details is None or data is None:
        session.forget(OPEN)
        return
    previous, following = _neighbours(image_id)
    back, position, forward = st.columns((1, 2, 1))
    back.button("Previous", icon=":material/chevron_left:", key="gal.previous", disabled=previous is None,
                on_click=_go, args=(previous,))  # fmt: skip
    ids = session.recall(PAGE_IDS, list) or []
    if image_id in ids:
        position.caption(f"Picture {ids.index(image_id) + 1} of {len(ids)} on this page")
    forward.button("Next", icon=":material/chevron_right:", key="gal.next", disabled=following is None,
                   on_click=_go, args=(following,))  # fmt: skip
    picture, info = st.columns((1, 1))
    picture.image(data, width="stretch")
    with info:
        st.subheader("Parameters")
        st.table(pd.DataFrame({"Value": parameter_rows(details)}))
        with st.expander("Everything stored with the picture (JSON)"):
            st.json(details.parameters)
    actions(details, data)


@st.dialog("Picture", width="large", on_dismiss=_closed)
def lightbox() -> None:
    open_id = session.recall(OPEN, str)
    if open_id:
        opened(open_id)


def main() -> None:
    st.title("Gallery")
    st.session_state.setdefault("gal.kind", "output")
    query = filters()
    page = attempt(partial(session.client().images, query))
    if page is None:
        return
    if not page.items and query.offset > 0:  # the filters changed under a later page: back to the first
        st.session_state["gal.page"] = 1
        st.rerun()
    pages = max(1, -(-page.total // PAGE_SIZE))
    shown = "picture" if query.kind != "upload" else "upload"
    st.caption(f"{page.total} {shown}{'s' if page.total != 1 else ''}, newest first")
    if not page.items:
        st.info("No pictures match.")
    session.remember(PAGE_IDS, [image.id for image in page.items])
    clicked = thumbnail_grid(page.items, key="gal", columns=6, open_label="Open")
    if clicked:
        _go(clicked)
    if pages > 1:
        st.number_input("Page", 1, pages, key="gal.page")
    if session.recall(OPEN, str):
        lightbox()


if __name__ == "__main__":
    main()
