"""Generate: prompt and settings in, pictures with their seeds out (txt2img, img2img, inpaint).

No ``st.form`` here on purpose: the LoRA weight sliders, the size presets of the chosen model and
the mask painter react as soon as something changes. What the person typed is kept aside
(``session.keep``) so it is still there after a visit to another page, and every finished job goes
into this session's history below the form.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import streamlit as st

from limner.ui import session
from limner.ui.client import Upload
from limner.ui.components import history, jobs
from limner.ui.components.control_panel import ControlChoice, control_panel
from limner.ui.components.feedback import attempt
from limner.ui.components.hires_panel import hires_panel
from limner.ui.components.mask_painter import mask_painter
from limner.ui.components.models import lora_picker, model_field, set_loras, size_field
from limner.ui.components.offers import model_tasks_note
from limner.ui.job_spec import SCHEDULERS, JobSpec, format_size, parse_lines, parse_size, task_for_inputs

JOB_KEY = "gen.job"
INIT_ID = "gen.init_id"
SPEC = "gen.spec"  # the spec of the job being followed, for its history entry
LORAS = "gen.loras"
_DEFAULT = "(model default)"
_DEFAULTS: dict[str, Any] = {"gen.count": 1, "gen.strength": 0.75, "gen.mask_mode": "none"}
FORM_KEYS = (
    "gen.prompt", "gen.negative", "gen.model", "gen.size", "gen.scheduler", "gen.steps", "gen.guidance",
    "gen.seed", "gen.count", "gen.strength", "gen.mask_mode", LORAS, "gen.combinatorial", "gen.embeddings",
)  # fmt: skip
PROMPT_SYNTAX = (
    "`(word:1.3)` or `(word)` weights a word up, `[word]` down, `\\(` is a bracket; `{red|blue}` picks one option, "
    "`__colors__` a line of a wildcard file (colors, animals, styles, lighting, places, moods); each image gets "
    "its own pick, and its prompt is stored with it."
)
MASK_MODES = {
    "none": "No mask: change the whole picture (img2img)",
    "paint": "Paint a mask (inpaint)",
    "file": "Upload a mask file (inpaint)",
}


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
        "gen.strength": spec.strength or 0.75,
        "gen.mask_mode": "paint" if spec.task == "inpaint" else "none",
    }
    for key, value in state.items():
        st.session_state[key] = value
    set_loras(LORAS, spec.loras)
    st.session_state["gen.embeddings"] = "\n".join(spec.embeddings)
    st.session_state["gen.combinatorial"] = spec.combinatorial
    if spec.init_image_id:
        st.session_state[INIT_ID] = spec.init_image_id
    else:
        st.session_state.pop(INIT_ID, None)


def _upload(file: Any) -> Upload | None:
    return Upload(file.name, file.getvalue()) if file is not None else None


def pictures(init_id: str | None) -> tuple[Inputs, float, Any]:
    """Start picture, mask (painted or a file) and the latest result side by side; strength."""
    client = session.client()
    start: bytes | None = None
    init_file = None
    if init_id:
        if st.button("Clear the start picture", icon=":material/close:", key="gen.clear_init"):
            session.forget(INIT_ID)
            st.rerun()
        start = attempt(partial(client.image_bytes, init_id))
    else:
        init_file = st.file_uploader(
            "Start picture (drop a file here)", type=["png", "jpg", "jpeg", "webp"], key="gen.init"
        )
        start = init_file.getvalue() if init_file is not None else None
    strength = st.slider("Strength (how much to change)", 0.05, 1.0, step=0.05, key="gen.strength")
    mode = st.radio("Mask", list(MASK_MODES), format_func=MASK_MODES.__getitem__, key="gen.mask_mode", horizontal=True)
    picture, mask_column, result_column = st.columns(3)
    painted: bytes | None = None
    mask_file = None
    with picture:
        st.caption("Start picture" + (": paint over it" if mode == "paint" and start else ""))
        if start is None:
            st.info("Drop a start picture above to change it or repaint part of it.", icon=":material/image:")
        elif mode == "paint":
            painted = mask_painter(start, key="gen.painter")
        else:
            st.image(start, width="stretch")
    with mask_column:
        st.caption("Mask (white = repaint)")
        if mode == "file":
            mask_file = st.file_uploader("Mask file", type=["png", "jpg", "jpeg", "webp"], key="gen.mask")
        mask_bytes = painted if mode == "paint" else (mask_file.getvalue() if mask_file is not None else None)
        if mask_bytes is not None:
            st.image(mask_bytes, width="stretch")
        elif mode == "paint" and start is not None:
            st.caption("Nothing painted yet.")
    with result_column:
        st.caption("Result")
        result = st.empty()  # filled at the end of the run, once the job being followed has ended
    mask = Upload("painted-mask.png", painted) if painted is not None else _upload(mask_file)
    return Inputs(init_id, _upload(init_file), mask if mode != "none" else None), float(strength), result


def show_latest(place: Any) -> None:
    latest = history.latest_picture()
    if latest is not None:
        data = attempt(partial(session.client().image_bytes, latest))
        if data is not None:
            place.image(data, width="stretch")


def settings_form() -> tuple[bool, dict[str, Any]]:
    """The fields; returns whether Generate was clicked and the raw values."""
    init_id = session.recall(INIT_ID, str)
    for key, default in _DEFAULTS.items():  # defaults through state, so a prefill never fights a value=
        st.session_state.setdefault(key, default)
    prompt = st.text_area("Prompt", key="gen.prompt", placeholder="an emoji of a red apple")
    negative = st.text_area("Negative prompt", key="gen.negative", height=68, placeholder="blurry, text")
    left, middle, right = st.columns(3)
    model = model_field("Model", "gen.model", container=left)
    size = size_field("Size", "gen.size", model, container=middle)
    scheduler = right.selectbox("Scheduler", (_DEFAULT, *SCHEDULERS), key="gen.scheduler")
    note = model_tasks_note(model)
    if note:
        st.caption(note)
    left, middle, right, last = st.columns(4)
    steps = left.number_input("Steps", 1, 1000, value=None, key="gen.steps", placeholder="default")
    guidance = middle.number_input(
        "Guidance", 0.0, 50.0, value=None, step=0.5, key="gen.guidance", placeholder="default"
    )
    seed = right.number_input("Seed", 0, 2**32 - 1, value=None, key="gen.seed", placeholder="random")
    count = last.number_input("Images", 1, 16, key="gen.count")
    loras = lora_picker(LORAS)
    with st.expander("Prompt syntax, wildcards and embeddings"):
        st.caption(PROMPT_SYNTAX)
        combinatorial = st.checkbox(
            "Every combination of the choices (instead of random picks)", key="gen.combinatorial",
            help="One image per combination, times Images; at most 16 images a job.",
        )  # fmt: skip
        embeddings = st.text_area(
            "Textual-inversion embeddings", key="gen.embeddings", height=68, placeholder="owner/repo (one per line)",
            help="Hub ids (owner/repo or owner/repo/file.safetensors) or registered names; write the embedding's "
            "word in the prompt.",
        )  # fmt: skip
    with st.expander("Start from a picture (img2img) or repaint part of it (inpaint)", expanded=True):
        inputs, strength, result = pictures(init_id)
    with st.expander("Guide the composition with a control picture (ControlNet)"):
        control = control_panel("gen.control")
    with st.expander("Hires fix: draw at the size above, then refine at a larger one"):
        hires = hires_panel("gen.hires")
    submitted = st.button("Generate", type="primary", icon=":material/brush:", key="gen.submit")
    values = {
        "prompt": prompt, "negative": negative, "model": model, "size": size, "scheduler": scheduler,
        "steps": steps, "guidance": guidance, "seed": seed, "count": count, "loras": loras,
        "combinatorial": combinatorial, "embeddings": embeddings,
        "strength": strength, "inputs": inputs, "result": result, "control": control, "hires": hires,
    }  # fmt: skip
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
        loras=tuple(values["loras"]),
        embeddings=parse_lines(values.get("embeddings") or ""),
        combinatorial=bool(values.get("combinatorial")),
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
    if inputs.mask_file is not None and inputs.init_id is None and inputs.init_file is None:
        st.error("A mask needs a start picture: add one above, or remove the mask.")
        return
    if values.get("hires") and (inputs.init_id is not None or inputs.init_file is not None):
        st.error("The hires fix works on text to image: remove the start picture, or switch the hires fix off.")
        return
    client = session.client()
    init_id = inputs.init_id or attempt(partial(jobs.upload_input, client, inputs.init_file, "init_image"))
    if inputs.init_file is not None and init_id is None:
        return
    mask_id = attempt(partial(jobs.upload_input, client, inputs.mask_file, "mask_image"))
    if inputs.mask_file is not None and mask_id is None:
        return
    control: ControlChoice | None = values.get("control")
    control_id = attempt(partial(jobs.upload_input, client, control.upload if control else None, "controls"))
    if control is not None and control_id is None:
        return
    spec = build_spec(values, init_id, mask_id)
    if values.get("hires"):
        spec = replace(spec, extra={**spec.extra, **values["hires"]})
    if control is not None and control_id is not None:
        spec = replace(spec, extra={**spec.extra, "controls": [control.body(control_id)]})
    if jobs.start(JOB_KEY, spec) is not None:
        session.remember(SPEC, spec)


def show_history() -> None:
    """This session's jobs, newest first: thumbnails and "Reuse these settings" (results stay)."""
    entries = history.entries()
    if not entries:
        return
    st.subheader("This session's pictures")
    client = session.client()
    for entry in entries:
        with st.container(border=True, key=f"gen-history-{entry.job_id}"):
            text, *thumbs = st.columns([3, 1, 1, 1, 1])
            prompt = entry.spec.prompt or "(no prompt)"
            text.markdown(f"**{prompt}**  \n{entry.spec.task} · {entry.status}")
            if text.button("Reuse these settings", key=f"gen.history:reuse:{entry.job_id}", icon=":material/replay:"):
                session.hand_off("generate", entry.spec)  # filled in at the top of the next run
                st.rerun()
            for column, image_id in zip(thumbs, entry.image_ids, strict=False):
                data = attempt(partial(client.thumbnail, image_id))
                if data is not None:
                    column.image(data, width="stretch")


def main() -> None:
    st.title("Generate")
    handed = session.take_hand_off("generate", JobSpec)
    if handed is not None:
        prefill(handed)
        st.toast("Settings loaded: change anything, then Generate.")
    session.restore(*FORM_KEYS, *[key for key in session.kept_keys() if key.startswith(f"{LORAS}:weight:")])
    submitted, values = settings_form()
    session.keep(*FORM_KEYS, *[key for key in st.session_state if str(key).startswith(f"{LORAS}:weight:")])
    if submitted:
        submit(values)
    tracked = jobs.follow(JOB_KEY)
    if tracked is not None and tracked.finished:
        history.record(tracked, session.recall(SPEC, JobSpec) or JobSpec())
        jobs.show_results(JOB_KEY, tracked)
    show_latest(values["result"])
    show_history()


if __name__ == "__main__":
    main()
