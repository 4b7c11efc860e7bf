"""Edit: a photo plus an instruction or a preset ("cartoonize"), shown before and after side by side."""

from __future__ import annotations

from functools import partial
from typing import Any

import streamlit as st

from limner.ui import session
from limner.ui.client import Upload
from limner.ui.components import jobs
from limner.ui.components.feedback import attempt
from limner.ui.components.models import model_field
from limner.ui.components.offers import offered
from limner.ui.job_spec import JobSpec

JOB_KEY = "edit.job"
SOURCE_ID = "edit.source_id"  # the "before" picture of the current edit (an upload or gallery image)
_DEFAULTS: dict[str, Any] = {"edit.mode": "Preset", "edit.preset": "cartoonize", "edit.image_guidance": 1.5}


def source_picker() -> tuple[str | None, Upload | None]:
    """The picture to edit: one sent from the gallery, or a new upload."""
    handed = session.take_hand_off("edit", str)
    if handed:
        session.remember(SOURCE_ID, handed)
        session.remember("edit.from_gallery", True)
        session.forget(JOB_KEY)
    if session.recall("edit.from_gallery", bool):
        source_id = session.recall(SOURCE_ID, str)
        st.caption("Picture from the gallery")
        if st.button("Choose another picture", icon=":material/close:"):
            session.forget("edit.from_gallery")
            session.forget(SOURCE_ID)
            st.rerun()
        return source_id, None
    file = st.file_uploader("Photo to edit (drop a file here)", type=["png", "jpg", "jpeg", "webp"], key="edit.file")
    if file is not None:
        st.image(file.getvalue(), width=160, caption=file.name)  # a thumbnail, not only a file name
    return None, Upload(file.name, file.getvalue()) if file is not None else None


def edit_presets() -> list[str]:
    """Edit presets that will run here (from the capabilities); empty when the server cannot say."""
    capabilities = session.capabilities()
    if capabilities is None:
        return []
    return [offer.name for offer in capabilities.presets if offer.task == "edit" and offer.available]


def _preselect_edit_model() -> None:
    """When the server's default model cannot edit, start with one that can (a person may change it)."""
    capabilities = session.capabilities()
    default = capabilities.model(None) if capabilities is not None else None
    if capabilities is None or st.session_state.get("edit.model") or (default and "edit" in default.tasks):
        return
    editors = [model.name for model in capabilities.models if "edit" in model.tasks and not model.default]
    if editors:
        st.session_state["edit.model"] = editors[0]


def edit_form() -> tuple[bool, dict[str, Any]]:
    for key, default in _DEFAULTS.items():
        st.session_state.setdefault(key, default)
    presets = edit_presets()
    if presets and st.session_state.get("edit.preset") not in presets:
        st.session_state["edit.preset"] = presets[0]
    elif session.capabilities() is not None and not presets:
        st.session_state["edit.mode"] = "Instruction"  # no preset will run here: an instruction with a model
    _preselect_edit_model()
    with st.form("edit"):
        mode = st.radio("How", ("Preset", "Instruction"), horizontal=True, key="edit.mode")
        left, right = st.columns(2)
        presets = edit_presets()
        if presets:
            preset = left.selectbox("Preset", presets, key="edit.preset", accept_new_options=True,
                                    help="An edit preset of this server (a model and its instruction).")  # fmt: skip
        else:
            preset = left.text_input("Preset", key="edit.preset", help="A server preset, e.g. cartoonize.")
        instruction = right.text_input(
            "Instruction", key="edit.instruction", placeholder="Cartoonize the following image"
        )
        left, middle, right = st.columns(3)
        model = model_field("Model", "edit.model", "the preset's, or the server default", left)
        image_guidance = middle.slider("Image guidance (keep the photo)", 0.0, 5.0, step=0.1, key="edit.image_guidance")
        seed = right.number_input("Seed", 0, 2**32 - 1, value=None, key="edit.seed", placeholder="random")
        steps = left.number_input("Steps", 1, 1000, value=None, key="edit.steps", placeholder="default")
        guidance = middle.number_input(
            "Text guidance", 0.0, 50.0, value=None, step=0.5, key="edit.guidance", placeholder="default"
        )
        submitted = st.form_submit_button("Edit", type="primary", icon=":material/auto_fix_high:")
    return submitted, {
        "mode": mode,
        "preset": preset,
        "instruction": instruction,
        "model": model,
        "image_guidance": image_guidance,
        "seed": seed,
        "steps": steps,
        "guidance": guidance,
    }


def build_spec(values: dict[str, Any], source_id: str) -> JobSpec:
    """An instruction edit; with a preset, an empty instruction takes the preset's own."""
    use_preset = values["mode"] == "Preset"
    return JobSpec(
        task="edit",
        prompt=values["instruction"].strip(),
        preset=(str(values["preset"] or "").strip() or None) if use_preset else None,
        model=values["model"],
        image_guidance_scale=float(values["image_guidance"]),
        guidance_scale=float(values["guidance"]) if values["guidance"] is not None else None,
        steps=int(values["steps"]) if values["steps"] is not None else None,
        seed=int(values["seed"]) if values["seed"] is not None else None,
        num_images=1,
        init_image_id=source_id,
    )


def submit(values: dict[str, Any], source_id: str | None, upload: Upload | None) -> None:
    if values["mode"] == "Instruction" and not values["instruction"].strip():
        st.error("Write an instruction, or choose Preset.")
        return
    if source_id is None and upload is None:
        st.error("Choose a photo to edit first.")
        return
    client = session.client()
    source_id = source_id or attempt(partial(jobs.upload_input, client, upload, "image"))
    if source_id is None:
        return
    session.remember(SOURCE_ID, source_id)
    jobs.start(JOB_KEY, build_spec(values, source_id))


def before_after() -> None:
    tracked = jobs.follow(JOB_KEY)
    source_id = session.recall(SOURCE_ID, str)
    if tracked is None or not tracked.finished or source_id is None:
        return
    jobs.outcome(tracked)
    if not tracked.image_ids:
        return
    client = session.client()
    before = attempt(partial(client.image_bytes, source_id))
    after = attempt(partial(client.image_bytes, tracked.image_ids[0]))
    left, right = st.columns(2)
    if before is not None:
        left.image(before, caption="Before", width="stretch")
    if after is not None:
        right.image(after, caption="After", width="stretch")
        right.download_button(
            "Download", after, file_name=f"{tracked.image_ids[0]}.png", mime="image/png", icon=":material/download:"
        )


def main() -> None:
    st.title("Edit a photo")
    st.caption("InstructPix2Pix-style edits: the photo stays, the instruction changes it.")
    if not offered("edit", "Editing a photo by instruction"):
        return
    source_id, upload = source_picker()
    if source_id:
        data = attempt(partial(session.client().thumbnail, source_id))
        if data is not None:
            st.image(data, width=160)
    submitted, values = edit_form()
    if submitted:
        submit(values, source_id if session.recall("edit.from_gallery", bool) else None, upload)
    before_after()


if __name__ == "__main__":
    main()
