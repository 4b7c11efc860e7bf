"""Show API errors and missing features as sentences, never as stack traces.

Why here: every page calls the API; catching :class:`ApiError` in one helper keeps the message
format and the "sign in again" behaviour the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from limner.ui.api_errors import ApiError
from limner.ui.features import Feature, ServerFeatures

T = TypeVar("T")


def show_error(error: ApiError) -> None:
    st.error(error.readable(), icon=":material/error:")


def attempt(action: Callable[[], T]) -> T | None:
    """Run one API call; on an API error show it and return ``None`` (a 401 goes up to sign out)."""
    try:
        return action()
    except ApiError as error:
        if error.unauthenticated:
            raise
        show_error(error)
        return None


def succeeded(action: Callable[[], object]) -> bool:
    """Run an API call that returns nothing useful (a delete); True when it worked, else the error is shown."""
    try:
        action()
    except ApiError as error:
        if error.unauthenticated:
            raise
        show_error(error)
        return False
    return True


def unavailable(*missing: Feature, what: str = "") -> None:
    """Say plainly which feature this server lacks and which route would provide it."""
    names = ", ".join(feature.name for feature in missing)
    routes = ", ".join(f"`{feature.route}`" for feature in missing)
    sentences = [
        f"**{names}: not available on this server yet.**",
        what,
        f"The server does not offer {routes} (checked in its /openapi.json); this page will work once it does.",
    ]
    st.info(
        " ".join(sentence for sentence in sentences if sentence),
        icon=":material/construction:",
    )


def require(features: ServerFeatures, *needed: Feature, what: str = "") -> bool:
    """True when the server has every needed route; otherwise show :func:`unavailable` and return False."""
    missing = features.missing(*needed)
    if missing:
        unavailable(*missing, what=what)
        return False
    return True
