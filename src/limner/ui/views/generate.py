"""Generate: prompt and settings in, pictures with their seeds out (txt2img, img2img, inpaint)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import streamlit as st

from limner.ui import session
from limner.ui.client import Upload
from limner.ui.components import jobs
from limner.ui.components.feedback import attempt
from limner.ui.components.models import model_field
from limner.ui.job_spec import (
    SCHEDULERS,
    JobSpec,
    format_loras,
    format_size,
    parse_loras,
    parse_size,
    task_for_inputs,
)

JOB_KEY = "gen.job"
INIT_ID = "gen.init_id"
_DEFAULT = "(model default)"
_DEFAULTS: dict[str, Any] = {"gen.count": 1, "gen.strength": 0.75}


@dataclass(frozen=True)
class Inputs:
    """Pictures for img2img/inpaint: an earlier image's id, or new files to upload."""

    init_id: str | None
    init_file: Upload | None
    mask_file: Upload | None


def prefill(spec: JobSpec) -> None:
    """Put a spec's values into the form's widgets ("reuse these settings", "send to img2img")."""
    state: dict[str, Any] = {
        "gen.prompt": spec.prompt,
        "gen.negative": spec.negative_prompt,
        "gen.model": spec.model or "",
        "gen.size": format_size(spec.width, spec.height),
        "gen.steps": spec.steps,
        "gen.guidance": spec.guidance_scale,
        "gen.seed": spec.seed,
        "gen.scheduler": spec.scheduler or _DEFAULT,
        "gen.count": spec.num_images or 1,
        "gen.loras": format_loras(spec.loras),
        "gen.strength": spec.strength or 0.75,
    }
    for key, value in state.items():
        st.session_state[key] = value
    if spec.init_image_id:
        st.session_state[INIT_ID] = spec.init_image_id
    else:
        st.session_state.pop(INIT_ID, None)


def _upload(file: Any) -> Upload | None:
    return Upload(file.name, file.getvalue()) if file is not None else None


def settings_form() -> tuple[bool, dict[str, Any]]:
    """The form; returns whether it was submitted and the raw values."""
    init_id = session.recall(INIT_ID, str)
    for key, default in _DEFAULTS.items():  # defaults through state, so a prefill never fights a value=
        st.session_state.setdefault(key, default)
    with st.form("generate"):
        prompt = st.text_area("Prompt", key="gen.prompt", placeholder="an emoji of a red apple")
        negative = st.text_area("Negative prompt", key="gen.negative", height=68, placeholder="blurry, text")
        left, middle, right = st.columns(3)
        model = model_field("Model", "gen.model", container=left)
        size = middle.text_input("Size", key="gen.size", placeholder="model default, e.g. 512x512")
        scheduler = right.selectbox("Scheduler", (_DEFAULT, *SCHEDULERS), key="gen.scheduler")
        left, middle, right, last = st.columns(4)
        steps = left.number_input("Steps", 1, 1000, value=None, key="gen.steps", placeholder="default")
        guidance = middle.number_input(
            "Guidance", 0.0, 50.0, value=None, step=0.5, key="gen.guidance", placeholder="default"
        )
        seed = right.number_input("Seed", 0, 2**32 - 1, value=None, key="gen.seed", placeholder="random")
        count = last.number_input("Images", 1, 16, key="gen.count")
        loras = st.text_area("LoRAs", key="gen.loras", height=68, placeholder="one per line: file-or-hub-id:0.8")
        with st.expander("Start from a picture (img2img) or repaint part of it (inpaint)", expanded=bool(init_id)):
            if init_id:
                st.caption("Start picture from the gallery:")
                data = attempt(partial(session.client().thumbnail, init_id))
                if data is not None:
                    st.image(data, width=160)
                init_file = None
            else:
                init_file = st.file_uploader("Start picture", type=["png", "jpg", "jpeg", "webp"], key="gen.init")
            strength = st.slider("Strength (how much to change)", 0.05, 1.0, step=0.05, key="gen.strength")
            mask_file = st.file_uploader(
                "Mask (white = repaint, black = keep)", type=["png", "jpg", "jpeg", "webp"], key="gen.mask"
            )
        submitted = st.form_submit_button("Generate", type="primary", icon=":material/brush:")
    values = {
        "prompt": prompt,
        "negative": negative,
        "model": model,
        "size": size,
        "scheduler": scheduler,
        "steps": steps,
        "guidance": guidance,
        "seed": seed,
        "count": count,
        "loras": loras,
        "strength": strength,
        "inputs": Inputs(init_id, _upload(init_file), _upload(mask_file)),
    }
    return submitted, values


def build_spec(values: dict[str, Any], init_id: str | None, mask_id: str | None) -> JobSpec:
    size = parse_size(values["size"])
    task = task_for_inputs(init_id is not None, mask_id is not None)
    return JobSpec(
        task=task,
        prompt=values["prompt"].strip(),
        negative_prompt=values["negative"].strip(),
        model=values["model"],
        width=size[0] if size else None,
        height=size[1] if size else None,
        steps=int(values["steps"]) if values["steps"] is not None else None,
        guidance_scale=float(values["guidance"]) if values["guidance"] is not None else None,
        seed=int(values["seed"]) if values["seed"] is not None else None,
        num_images=int(values["count"]),
        scheduler=None if values["scheduler"] == _DEFAULT else values["scheduler"],
        loras=parse_loras(values["loras"]),
        strength=float(values["strength"]) if task != "txt2img" else None,
        init_image_id=init_id,
        mask_image_id=mask_id,
    )


def submit(values: dict[str, Any]) -> None:
    """Upload the pictures (if any), then queue the job; errors are shown, nothing half-done is kept."""
    inputs: Inputs = values["inputs"]
    try:
        parse_size(values["size"])
    except ValueError as error:
        st.error(str(error))
        return
    client = session.client()
    init_id = inputs.init_id or attempt(partial(jobs.upload_input, client, inputs.init_file, "init_image"))
    if inputs.init_file is not None and init_id is None:
        return
    mask_id = attempt(partial(jobs.upload_input, client, inputs.mask_file, "mask_image"))
    if inputs.mask_file is not None and mask_id is None:
        return
    if mask_id is not None and init_id is None:
        st.error("A mask needs a start picture: add one above, or remove the mask.")
        return
    jobs.start(JOB_KEY, build_spec(values, init_id, mask_id))


def main() -> None:
    st.title("Generate")
    handed = session.take_hand_off("generate", JobSpec)
    if handed is not None:
        prefill(handed)
        session.forget(JOB_KEY)
        st.toast("Settings loaded: change anything, then Generate.")
    if session.recall(INIT_ID, str) and st.button("Clear the start picture", icon=":material/close:"):
        session.forget(INIT_ID)
        st.rerun()
    submitted, values = settings_form()
    if submitted:
        submit(values)
    tracked = jobs.follow(JOB_KEY)
    if tracked is not None and tracked.finished:
        jobs.show_results(JOB_KEY, tracked)


if __name__ == "__main__":
    main()
