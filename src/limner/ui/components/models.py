"""The model, LoRA and size fields of the forms, fed by the server's capabilities.

Why one helper: Generate, Edit, Character and the batch form all take a model reference. With the
server's capabilities (``GET /v1/capabilities``) a person picks a base model by name, sees what it
can do, picks LoRAs separately with a weight each (a LoRA is not a model), and picks a size made
for the model's family; any reference or size may still be typed.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from limner.ui import session
from limner.ui.api_errors import ApiError
from limner.ui.api_types import Capabilities, ModelCapabilities
from limner.ui.features import MODELS
from limner.ui.job_spec import Lora, size_presets

SERVER_DEFAULT = "(server default)"
MODEL_DEFAULT_SIZE = "(model default)"


def registry_names() -> list[str]:
    """Base models the person may pick: from the capabilities, else the registry (LoRAs left out)."""
    capabilities = session.capabilities()
    if capabilities is not None:
        return list(capabilities.base_models)
    if not session.features().has(MODELS):
        return []
    try:
        answer: Any = session.client().get_json(MODELS.path)
    except ApiError as error:
        if error.unauthenticated:
            raise
        return []
    return [
        str(item["name"])
        for item in answer or []
        if isinstance(item, dict) and item.get("name") and item.get("kind") != "lora"
    ]


def model_label(name: str, capabilities: Capabilities | None) -> str:
    """``(server default)`` with the default model's name, so the person knows what it is."""
    if name == SERVER_DEFAULT and capabilities is not None and capabilities.default_model:
        return f"{SERVER_DEFAULT}: {capabilities.default_model}"
    return name


def model_field(label: str, key: str, placeholder: str = "server default", container: Any = st) -> str | None:
    """Draw the field; return the chosen reference, or ``None`` for the server's default."""
    names = registry_names()
    capabilities = session.capabilities()
    if not names:
        value = container.text_input(
            label,
            key=key,
            placeholder=model_label(SERVER_DEFAULT, capabilities) if capabilities else placeholder,
            help="Leave empty for the server's default model, or name a model the server knows.",
        )
        return str(value).strip() or None
    current = st.session_state.get(key)
    options = [SERVER_DEFAULT, *names]
    if current and current not in options:
        options.append(str(current))  # a reference typed earlier or reused from an image
    if not current:
        st.session_state[key] = SERVER_DEFAULT
    choice = container.selectbox(
        label,
        options,
        key=key,
        accept_new_options=True,
        format_func=lambda name: model_label(str(name), capabilities),
        help="A model on this server; LoRAs are added below, not here.",
    )
    return None if not choice or choice == SERVER_DEFAULT else str(choice).strip()


def chosen_model(name: str | None) -> ModelCapabilities | None:
    capabilities = session.capabilities()
    return capabilities.model(name) if capabilities is not None else None


def size_field(label: str, key: str, model: str | None, container: Any = st) -> str:
    """A size picker with the model family's common sizes, and free entry (``WIDTHxHEIGHT``)."""
    info = chosen_model(model)
    native = (info.width, info.height) if info is not None and info.width and info.height else None
    family = info.family if info is not None else "sd"
    options = [MODEL_DEFAULT_SIZE, *size_presets(family, native)]
    current = st.session_state.get(key)
    if current and current not in options:
        options.append(str(current))
    if not current:
        st.session_state[key] = MODEL_DEFAULT_SIZE
    choice = container.selectbox(
        label,
        options,
        key=key,
        accept_new_options=True,
        format_func=lambda size: (
            f"{MODEL_DEFAULT_SIZE}: {native[0]}x{native[1]}" if size == MODEL_DEFAULT_SIZE and native else str(size)
        ),
        help="Sizes this model's family was made for; or type WIDTHxHEIGHT (multiples of 8).",
    )
    return "" if not choice or choice == MODEL_DEFAULT_SIZE else str(choice)


def lora_picker(key: str, chosen: tuple[Lora, ...] = ()) -> tuple[Lora, ...]:
    """Registered LoRAs to add, each with a weight slider; references reused from an image stay listed."""
    capabilities = session.capabilities()
    names = list(capabilities.loras) if capabilities is not None else []
    for lora in chosen:
        if lora.ref not in names:
            names.append(lora.ref)
    if not names:
        st.caption("LoRAs: none registered on this server yet (train one on the Models page).")
        return ()
    picked = st.multiselect(
        "LoRAs", names, key=key, placeholder="none", help="Styles or subjects trained on top of the model."
    )
    loras = []
    for name in picked:
        st.session_state.setdefault(f"{key}:weight:{name}", 1.0)
        weight = st.slider(f"Weight of {name}", -2.0, 2.0, step=0.05, key=f"{key}:weight:{name}")
        loras.append(Lora(str(name), float(weight)))
    return tuple(loras)


def set_loras(key: str, loras: tuple[Lora, ...]) -> None:
    """Fill the picker (reuse these settings): the names and each weight."""
    st.session_state[key] = [lora.ref for lora in loras]
    for lora in loras:
        st.session_state[f"{key}:weight:{lora.ref}"] = lora.weight


def lora_weight_keys(key: str) -> list[str]:
    return [name for name in st.session_state if isinstance(name, str) and name.startswith(f"{key}:weight:")]
