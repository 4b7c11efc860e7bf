"""Character: the same character from reference pictures (or a saved character) in a new scene and style."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import streamlit as st

from limner.ui import session
from limner.ui.client import LimnerClient, Upload
from limner.ui.components import jobs
from limner.ui.components.feedback import attempt, require, succeeded
from limner.ui.components.models import model_field
from limner.ui.components.offers import offered
from limner.ui.features import CHARACTER_CREATE, CHARACTERS
from limner.ui.job_spec import JobSpec, parse_size

JOB_KEY = "char.job"
STYLES = ("(none)", "ghibli", "makoto", "watercolor")
_NEW = "New reference pictures"
_SAVED = "A saved character"
LOCAL = "Local (IP-Adapter)"
REMOTE = "Remote provider"
REMOTE_CHARACTER_PRESET = "instantcharacter"  # what "remote" means when no model is given
_DEFAULTS: dict[str, Any] = {"char.source": _NEW, "char.provider": LOCAL, "char.scale": 0.6}


def saved_characters(client: LimnerClient) -> list[dict[str, Any]]:
    answer = attempt(partial(client.get_json, CHARACTERS.path))
    return [item for item in answer or [] if isinstance(item, dict) and item.get("name")]


def show_saved(client: LimnerClient, characters: list[dict[str, Any]]) -> None:
    with st.expander(f"Saved characters ({len(characters)})", expanded=False):
        if not characters:
            st.caption("None yet: tick *Save as a character* below when you use new pictures.")
        for character in characters:
            left, middle, right = st.columns((1, 4, 1))
            references = character.get("reference_image_ids") or []
            if references:
                data = attempt(partial(client.thumbnail, str(references[0])))
                if data is not None:
                    left.image(data, width=64)
            middle.markdown(
                f"**{character['name']}** · {len(references)} picture(s)  \n{character.get('description', '')}"
            )
            delete = right.button("Delete", key=f"char.delete:{character['name']}", icon=":material/delete:")
            if delete and succeeded(partial(client.delete, f"{CHARACTERS.path}/{character['name']}")):
                st.rerun()


def style_options() -> tuple[list[str], list[str]]:
    """Styles that will run here, and a line for each that will not (from the capabilities)."""
    capabilities = session.capabilities()
    if capabilities is None:
        return list(STYLES), []
    usable = [STYLES[0], *(offer.name for offer in capabilities.styles if offer.available)]
    notes = [f"{offer.name}: {offer.reason}" for offer in capabilities.styles if not offer.available]
    return usable, notes


def providers() -> tuple[str, ...]:
    """Local when an IP-Adapter is set up, Remote when the server has the provider for it."""
    capabilities = session.capabilities()
    if capabilities is None:
        return (LOCAL, REMOTE)
    local = capabilities.character_adapter or any("character" in model.tasks for model in capabilities.models)
    options = ((LOCAL,) if local else ()) + ((REMOTE,) if "replicate" in capabilities.providers else ())
    return options or (LOCAL,)


def character_form(names: list[str]) -> tuple[bool, dict[str, Any]]:
    for key, default in _DEFAULTS.items():
        st.session_state.setdefault(key, default)
    styles, style_notes = style_options()
    choices = providers()
    if st.session_state.get("char.provider") not in choices:
        st.session_state["char.provider"] = choices[0]
    # The pictures sit outside the form so their thumbnails show as soon as they are dropped.
    files = st.file_uploader(
        "Reference pictures (1-8; drop files here)",
        type=["png", "jpg", "jpeg", "webp"],
        accept_multiple_files=True,
        key="char.files",
    )
    if files:
        for column, file in zip(st.columns(min(len(files), 8)), files[:8], strict=False):
            column.image(file.getvalue(), width=96, caption=file.name)
    with st.form("character"):
        source = st.radio("Who", (_NEW, _SAVED), horizontal=True, key="char.source")
        left, right = st.columns(2)
        save_name = left.text_input("Save as a character named", key="char.save_name", placeholder="optional")
        saved = right.selectbox("Saved character", names or ["(none saved)"], key="char.saved")
        prompt = st.text_area("Scene", key="char.prompt", placeholder="reading a book on the beach")
        left, middle, right = st.columns(3)
        style = left.selectbox("Style", styles, key="char.style", accept_new_options=True,
                               help=" ".join(style_notes) or None)  # fmt: skip
        scale = middle.slider("Reference strength", 0.0, 2.0, step=0.05, key="char.scale")
        seed = right.number_input("Seed", 0, 2**32 - 1, value=None, key="char.seed", placeholder="random")
        left, middle, right = st.columns(3)
        provider = left.radio("Provider", choices, key="char.provider")
        model = model_field(
            "Model", "char.model", "local: server default; remote: Replicate's InstantCharacter", middle
        )
        size = right.text_input("Size", key="char.size", placeholder="model default")
        adapter = st.text_input(
            "IP-Adapter",
            key="char.adapter",
            placeholder="the server's default for the model",
            help="An IP-Adapter file, folder or hub id the server can load.",
        )
        submitted = st.form_submit_button("Create", type="primary", icon=":material/face:")
    uploads = [Upload(file.name, file.getvalue()) for file in files or []]
    return submitted, {
        "source": source,
        "uploads": uploads,
        "save_name": save_name.strip(),
        "saved": saved,
        "prompt": prompt.strip(),
        "style": style,
        "scale": scale,
        "seed": seed,
        "provider": provider,
        "model": model or "",
        "size": size,
        "adapter": adapter.strip(),
    }


def build_spec(values: dict[str, Any], reference_ids: list[str], character: str | None) -> JobSpec:
    size = parse_size(values["size"])
    extra: dict[str, Any] = {"ip_adapter_scale": float(values["scale"])}
    if values["adapter"]:
        extra["ip_adapter"] = values["adapter"]
    if character:
        extra["character"] = character
    else:
        extra["reference_image_ids"] = reference_ids
    if values["style"] and values["style"] != STYLES[0]:
        extra["style"] = values["style"]
    remote_default = values["provider"] == REMOTE and not values["model"]
    return JobSpec(
        task="character",
        prompt=values["prompt"],
        preset=REMOTE_CHARACTER_PRESET if remote_default else None,
        model=values["model"] or None,
        width=size[0] if size else None,
        height=size[1] if size else None,
        seed=int(values["seed"]) if values["seed"] is not None else None,
        num_images=1,
        extra=extra,
    )


def submit(client: LimnerClient, values: dict[str, Any], names: list[str]) -> None:
    try:
        parse_size(values["size"])
    except ValueError as error:
        st.error(str(error))
        return
    if values["provider"] == REMOTE and values["model"] and ":" not in values["model"]:
        st.error("A remote model is written provider:model, e.g. replicate:owner/model.")
        return
    character: str | None = None
    reference_ids: list[str] = []
    if values["source"] == _SAVED:
        if values["saved"] not in names:
            st.error("There is no saved character yet: use new reference pictures.")
            return
        character = values["saved"]
    elif not values["uploads"]:
        st.error("Add at least one reference picture.")
        return
    elif values["save_name"]:
        fields = {"name": values["save_name"], "weights": json.dumps([1.0] * len(values["uploads"]))}
        created = attempt(
            partial(
                client.post_form, CHARACTER_CREATE.path, fields, [("images", upload) for upload in values["uploads"]]
            )
        )
        if created is None:
            return
        st.toast(f"Saved character {values['save_name']}.")
        character = values["save_name"]
    else:
        for upload in values["uploads"]:
            stored = attempt(partial(client.upload, upload, "reference_images"))
            if stored is None:
                return
            reference_ids.append(stored.id)
    jobs.start(JOB_KEY, build_spec(values, reference_ids, character))


def main() -> None:
    st.title("Character")
    st.caption("One picture of a character and a sentence: the same character in a new scene, in a style you choose.")
    if not require(session.features(), CHARACTERS, what="Character generation needs saved characters on the server."):
        return
    if not offered("character", "Making character pictures"):
        return
    client = session.client()
    names = [str(character["name"]) for character in saved_characters(client)]
    submitted, values = character_form(names)
    if submitted:
        submit(client, values, names)
    tracked = jobs.follow(JOB_KEY)
    if tracked is not None and tracked.finished:
        jobs.show_results(JOB_KEY, tracked)
    show_saved(client, saved_characters(client))  # read after a save, so the new one is listed


if __name__ == "__main__":
    main()
