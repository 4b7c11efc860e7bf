"""The model field of every form: a pick from the server's registry when it has one, free text otherwise.

Why one helper: Generate, Edit, Character and the batch form all take a model reference; with the
registry (``GET /v1/models``) a person picks a friendly name and may still type any reference.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from limner.ui import session
from limner.ui.api_errors import ApiError
from limner.ui.features import MODELS

SERVER_DEFAULT = "(server default)"


def registry_names() -> list[str]:
    """Names in the server's registry, or an empty list when it has none (or cannot say)."""
    if not session.features().has(MODELS):
        return []
    try:
        answer: Any = session.client().get_json(MODELS.path)
    except ApiError as error:
        if error.unauthenticated:
            raise
        return []
    return [str(item["name"]) for item in answer or [] if isinstance(item, dict) and item.get("name")]


def model_field(label: str, key: str, placeholder: str = "server default", container: Any = st) -> str | None:
    """Draw the field; return the chosen reference, or ``None`` for the server's default."""
    names = registry_names()
    if not names:
        value = container.text_input(
            label,
            key=key,
            placeholder=placeholder,
            help="A built-in name, hub id, folder or .safetensors file known to the server.",
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
        help="A registered model, or type any reference the server can load.",
    )
    return None if not choice or choice == SERVER_DEFAULT else str(choice).strip()
