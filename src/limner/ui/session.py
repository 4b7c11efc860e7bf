"""What one browser session remembers: the API URL, the login, server features, hand-offs.

Why one module: Streamlit's ``st.session_state`` is a per-session dict with string keys; keeping
every key and its type here stops pages from inventing overlapping names, and it is the only
state the UI has (nothing module-global).
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

import streamlit as st

from limner.ui import API_URL_ENV, DEFAULT_API_URL
from limner.ui.api_types import Capabilities, User
from limner.ui.client import LimnerClient
from limner.ui.features import ServerFeatures

T = TypeVar("T")

_API_URL = "api_url"
_TOKEN = "token"
_USER = "user"
_FEATURES = "features"
_CAPABILITIES = "capabilities"
_NOTICE = "notice"
_HANDOFF = "handoff:"


def api_url() -> str:
    """The server this session talks to: set once from ``LIMNER_UI_API_URL`` (what ``limner ui`` passes)."""
    if _API_URL not in st.session_state:
        st.session_state[_API_URL] = os.environ.get(API_URL_ENV) or DEFAULT_API_URL
    return str(st.session_state[_API_URL])


def client() -> LimnerClient:
    return LimnerClient(api_url(), st.session_state.get(_TOKEN))


def signed_in() -> bool:
    return bool(st.session_state.get(_TOKEN))


def current_user() -> User | None:
    user = st.session_state.get(_USER)
    return user if isinstance(user, User) else None


def sign_in(token: str, user: User) -> None:
    st.session_state[_TOKEN] = token
    st.session_state[_USER] = user


def sign_out(notice: str | None = None) -> None:
    """Forget the token (and everything fetched with it); ``notice`` is shown on the sign-in page."""
    for key in list(st.session_state.keys()):
        if key != _API_URL:
            del st.session_state[key]
    if notice:
        st.session_state[_NOTICE] = notice


def take_notice() -> str | None:
    notice = st.session_state.pop(_NOTICE, None)
    return str(notice) if notice else None


def features(refresh: bool = False) -> ServerFeatures:
    """The server's routes, read once per session (``/openapi.json`` is large)."""
    if refresh or not isinstance(st.session_state.get(_FEATURES), ServerFeatures):
        st.session_state[_FEATURES] = client().features()
    value: ServerFeatures = st.session_state[_FEATURES]
    return value


def capabilities(refresh: bool = False) -> Capabilities | None:
    """What will run on the server (``GET /v1/capabilities``), read once per session unless refreshed.

    ``None`` when the server is too old to say: pages then offer everything and let the server decide.
    """
    if refresh or _CAPABILITIES not in st.session_state:
        st.session_state[_CAPABILITIES] = client().capabilities()
    value = st.session_state[_CAPABILITIES]
    return value if isinstance(value, Capabilities) else None


def hand_off(name: str, value: Any) -> None:
    """Leave something for another page (e.g. Gallery -> Generate "reuse these settings")."""
    st.session_state[_HANDOFF + name] = value


def take_hand_off(name: str, kind: type[T]) -> T | None:
    """Pick up (and remove) what another page left, if it is of the expected type."""
    value = st.session_state.pop(_HANDOFF + name, None)
    return value if isinstance(value, kind) else None


def remember(key: str, value: Any) -> None:
    st.session_state[key] = value


def recall(key: str, kind: type[T]) -> T | None:
    value = st.session_state.get(key)
    return value if isinstance(value, kind) else None


def forget(key: str) -> None:
    st.session_state.pop(key, None)


_KEPT = "kept:"


def restore(*keys: str) -> None:
    """Give form widgets back the values they had when the person left the page.

    Streamlit drops a widget's state when a run does not draw it (another page was shown); the
    pages copy their values aside with :func:`keep` and put them back here before drawing.
    """
    for key in keys:
        if key not in st.session_state and _KEPT + key in st.session_state:
            st.session_state[key] = st.session_state[_KEPT + key]


def keep(*keys: str) -> None:
    """Copy the widgets' current values aside (see :func:`restore`)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[_KEPT + key] = st.session_state[key]


def kept_keys() -> list[str]:
    """Keys of the values kept aside (see :func:`keep`)."""
    return [str(key)[len(_KEPT) :] for key in st.session_state if str(key).startswith(_KEPT)]
