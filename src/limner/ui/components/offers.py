"""Say why a task is not offered here, in the server's sentence, instead of failing after queueing.

Why: the default offline server has no edit model and no IP-Adapter; the Edit and Character pages
used to accept the job and fail later with a developer's message. The capabilities answer says what
will run; a page asks :func:`offered` before drawing its form.
"""

from __future__ import annotations

import streamlit as st

from limner.ui import session


def offered(task: str, what: str) -> bool:
    """True when the server can run ``task``; otherwise explain (with what to do) and return False."""
    capabilities = session.capabilities()
    if capabilities is None or capabilities.can(task):
        return True
    with st.container(border=True, key=f"unavailable-{task}"):
        st.markdown(f"**{what} is not available on this server.**")
        st.markdown(capabilities.why_not(task))
        if st.button("Check again", key=f"recheck:{task}", icon=":material/refresh:",
                     help="Ask the server again (after an administrator added a model)"):  # fmt: skip
            session.capabilities(refresh=True)
            st.rerun()
    return False


def model_tasks_note(model: str | None) -> str:
    """``limner-tiny makes: txt2img, img2img, inpaint`` for the chosen model ('' when unknown)."""
    capabilities = session.capabilities()
    info = capabilities.model(model) if capabilities is not None else None
    if info is None or not info.tasks:
        return ""
    names = {"txt2img": "text to image", "img2img": "image to image", "inpaint": "inpaint", "edit": "edit",
             "character": "character"}  # fmt: skip
    note = f" ({info.note})" if info.note else ""
    return f"{info.name} can do: {', '.join(names.get(task, task) for task in info.tasks)}{note}."
