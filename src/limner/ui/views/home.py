"""Home: what limner does, how the server is doing, and the latest pictures."""

from __future__ import annotations

import streamlit as st

from limner.ui import navigation, session
from limner.ui.api_types import ImageQuery, ServerStatus
from limner.ui.components.feedback import attempt
from limner.ui.components.images import thumbnail_grid
from limner.ui.components.models import registry_names
from limner.ui.features import MODELS, SERVER_INFO, ServerFeatures

_CAPABILITIES = (
    (navigation.GENERATE, "Text to image, image to image and inpainting, with seeds you can reuse."),
    (navigation.EDIT, 'Edit a photo with an instruction or a preset ("cartoonize").'),
    (navigation.CHARACTER, "The same character from one picture in new scenes and styles."),
    (navigation.PROMPT_LAB, "Ideas for prompts, then a whole batch at once, downloaded as a zip."),
    (navigation.GALLERY, "Everything you made: search, filters, parameters, download."),
    (navigation.MODELS, "Installed models, LoRAs and your own fine-tuned ones."),
)


def capabilities() -> None:
    columns = st.columns(3)
    for index, (page, text) in enumerate(_CAPABILITIES):
        with columns[index % 3], st.container(border=True):
            st.page_link(page.path, label=page.title, icon=page.icon)
            st.caption(text)


def server_status(status: ServerStatus, features: ServerFeatures) -> None:
    st.subheader("Server")
    jobs = status.jobs_by_status
    metrics = st.columns(5)
    metrics[0].metric("Status", "ready" if status.ready else "not ready")
    metrics[1].metric("Version", status.version)
    metrics[2].metric("Queue", "?" if status.queue_depth is None else status.queue_depth)
    metrics[3].metric("Running", jobs.get("running", 0))
    metrics[4].metric("Done / failed", f"{jobs.get('succeeded', 0)} / {jobs.get('failed', 0)}")
    checks = ", ".join(f"{name}: {value}" for name, value in status.checks.items())
    st.caption(f"Checks: {checks or 'none reported'}")
    if features.has(MODELS):
        names = registry_names()
        st.caption(f"Registered models: {', '.join(names) if names else 'none yet (the default model still works)'}.")
    if features.has(SERVER_INFO):
        info = attempt(lambda: session.client().get_json(SERVER_INFO.path))
        if isinstance(info, dict):
            loaded = ", ".join(info.get("loaded_models") or []) or "none yet (loaded on first use)"
            st.caption(
                f"Device: {info.get('device')} ({info.get('dtype')}). Default model: "
                f"{info.get('default_model')}. Loaded models: {loaded}."
            )
    else:
        st.caption("Which models are loaded in memory, and the device (GPU/CPU), are not reported by this server.")


def main() -> None:
    user = session.current_user()
    st.title("limner studio")
    st.write(f"Welcome{', ' + user.username if user else ''}. Self-hosted image generation, from your own server.")
    capabilities()
    client = session.client()
    status = attempt(client.status)
    if status is not None:
        server_status(status, session.features())
    st.subheader("Your latest pictures")
    page = attempt(lambda: client.images(ImageQuery(kind="output", limit=8)))  # results, not uploads
    if page is not None and page.items:
        thumbnail_grid(page.items, key="home", columns=8)
    elif page is not None:
        st.info("No pictures yet: make the first one on the Generate page.")
        st.page_link(navigation.GENERATE.path, label="Generate", icon=navigation.GENERATE.icon)


if __name__ == "__main__":
    main()
