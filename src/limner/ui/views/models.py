"""Models & training: the server's model registry (install, import, remove for admins) and DreamBooth/LoRA runs."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import streamlit as st

from limner.ui import session
from limner.ui.client import LimnerClient, Upload
from limner.ui.components import jobs
from limner.ui.components.feedback import attempt, require, succeeded
from limner.ui.features import MODEL_IMPORT, MODEL_INSTALL, MODELS, TRAINING_LIST, TRAININGS

TRAINING_JOB = "models.training_job"
NOTICE = "models.notice"
_MODEL_COLUMNS = ("name", "kind", "architecture", "base_model", "reference", "size_bytes", "created_at")
_RUN_COLUMNS = ("id", "status", "progress", "model", "created_at", "finished_at")


def rows_of(answer: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Table rows from a list or a page (``{"items": [...]}``), keeping the columns people read."""
    items = answer.get("items", []) if isinstance(answer, dict) else answer
    return [{column: item.get(column) for column in columns} for item in items or [] if isinstance(item, dict)]


def admin_forms(client: LimnerClient, names: list[str]) -> None:
    """Install from the hub, import from the server's disk, remove: each only where the server offers it."""
    features = session.features()
    install, imports, remove = st.tabs(["Install from the hub", "Import from the server's disk", "Remove"])
    with install:
        if require(features, MODEL_INSTALL):
            with st.form("install"):
                hub_id = st.text_input("Hub id", key="models.hub_id", placeholder="stabilityai/sd-turbo")
                name = st.text_input("Name (optional)", key="models.install_name")
                go = st.form_submit_button("Install", icon=":material/download:")
            if go and hub_id.strip():
                body = {"hub_id": hub_id.strip(), **({"name": name.strip()} if name.strip() else {})}
                with st.spinner(f"Installing {hub_id.strip()} (downloading the weights can take a while)..."):
                    done = attempt(partial(client.post_json, MODEL_INSTALL.path, body))
                if done is not None:
                    changed(f"Installed as {done.get('name', hub_id)}.")
    with imports:
        if require(features, MODEL_IMPORT):
            with st.form("import"):
                path = st.text_input("Path on the server", key="models.path", placeholder="/models/my-model")
                name = st.text_input("Name", key="models.import_name")
                base = st.text_input("Base model (for a LoRA)", key="models.base", placeholder="optional")
                go = st.form_submit_button("Import", icon=":material/upload:")
            if go and path.strip() and name.strip():
                body = {
                    "path": path.strip(),
                    "name": name.strip(),
                    **({"base_model": base.strip()} if base.strip() else {}),
                }
                with st.spinner("Importing: checking the weights files and copying them..."):
                    done = attempt(partial(client.post_json, MODEL_IMPORT.path, body))
                if done is not None:
                    changed(f"Imported as {done.get('name', name)}.")
    with remove:
        if not names:
            st.caption("Nothing to remove.")
            return
        name = st.selectbox("Model", names, key="models.remove")
        if st.button("Remove", key="models.remove_go", icon=":material/delete:") and succeeded(
            partial(client.delete, f"{MODELS.path}/{name}")
        ):
            changed(f"Removed {name}.")


def changed(notice: str) -> None:
    """After an install, import or removal: say so above a list read again (and fresh capabilities)."""
    session.remember(NOTICE, notice)
    session.capabilities(refresh=True)
    st.rerun()


def registry(client: LimnerClient, admin: bool) -> None:
    st.header("Models")
    notice = session.recall(NOTICE, str)
    if notice:
        session.forget(NOTICE)
        st.success(notice)
    if not require(
        session.features(), MODELS, what="Generation still works with any model reference the server can load."
    ):
        return
    answer = attempt(partial(client.get_json, MODELS.path))
    rows = rows_of(answer, _MODEL_COLUMNS)
    if rows:
        st.dataframe(rows, width="stretch", hide_index=True)
    elif answer is not None:
        st.info("No models registered yet: every form still takes any model reference the server can load.")
    if admin:
        admin_forms(client, [str(row["name"]) for row in rows if row.get("name")])
    else:
        st.caption("Installing, importing and removing models is for admins.")


def training_config(values: dict[str, Any]) -> dict[str, Any]:
    """The DreamBooth options the server takes as the ``config`` JSON field."""
    config: dict[str, Any] = {"instance_prompt": values["instance_prompt"], "steps": int(values["steps"])}
    if values["class_prompt"]:
        config["class_prompt"] = values["class_prompt"]
        config["prior_preservation"] = bool(values["prior"])
    if values["validation_every"]:
        config["validation_every"] = int(values["validation_every"])
        config["validation_prompt"] = values["validation_prompt"] or values["instance_prompt"]
    return config


def training_form(client: LimnerClient) -> None:
    with st.form("training"):
        left, right = st.columns(2)
        name = left.text_input("Name of the new model", key="train.name", placeholder="my-dog")
        base = right.text_input("Base model", key="train.base", placeholder="server default")
        instance_prompt = left.text_input("Instance prompt", key="train.prompt", placeholder="a photo of sks dog")
        class_prompt = right.text_input("Class prompt", key="train.class_prompt", placeholder="a photo of a dog")
        steps = left.number_input("Steps", 1, 100000, value=800, key="train.steps")
        prior = right.checkbox("Prior preservation (needs the class prompt)", key="train.prior")
        validation_every = left.number_input(
            "Validation pictures every N steps (0: none)", 0, 100000, value=0, key="train.validation_every"
        )
        validation_prompt = right.text_input(
            "Validation prompt", key="train.validation_prompt", placeholder="the instance prompt"
        )
        dataset = st.file_uploader(
            "Pictures of the subject (a zip; one folder per class for several)", type=["zip"], key="train.dataset"
        )
        start = st.form_submit_button("Start training", type="primary", icon=":material/model_training:")
    if not start:
        return
    if not name.strip() or not instance_prompt.strip() or dataset is None:
        st.error("A name, an instance prompt and a zip of pictures are needed.")
        return
    values = {
        "instance_prompt": instance_prompt.strip(),
        "steps": steps,
        "class_prompt": class_prompt.strip(),
        "prior": prior,
        "validation_every": validation_every,
        "validation_prompt": validation_prompt.strip(),
    }
    fields = {"name": name.strip(), "config": json.dumps(training_config(values))}
    if base.strip():
        fields["base"] = base.strip()
    answer = attempt(
        partial(client.post_form, TRAININGS.path, fields, [("dataset", Upload(dataset.name, dataset.getvalue()))])
    )
    if isinstance(answer, dict) and answer.get("id"):
        session.remember(TRAINING_JOB, jobs.TrackedJob(str(answer["id"]), str(answer.get("status", "queued"))))


def training(client: LimnerClient) -> None:
    st.header("Training (DreamBooth with LoRA)")
    features = session.features()
    if not require(features, TRAININGS):
        return
    training_form(client)
    tracked = jobs.follow(TRAINING_JOB, finishing="Saving the trained model and registering it (this takes a while)")
    if tracked is not None and tracked.finished:
        if tracked.status == "succeeded" and session.recall(f"{TRAINING_JOB}:announced", str) != tracked.id:
            session.remember(f"{TRAINING_JOB}:announced", tracked.id)
            changed("Training finished: the new model is in the list above.")
        st.caption("Validation pictures of the run:" if tracked.image_ids else "")
        jobs.show_results(TRAINING_JOB, tracked, reuse=False)
    if features.has(TRAINING_LIST):
        runs = rows_of(attempt(partial(client.get_json, TRAINING_LIST.path)), _RUN_COLUMNS)
        if runs:
            st.subheader("Runs")
            st.dataframe(runs, width="stretch", hide_index=True)


def main() -> None:
    st.title("Models & training")
    user = session.current_user()
    client = session.client()
    registry(client, admin=bool(user and user.is_admin))
    training(client)


if __name__ == "__main__":
    main()
