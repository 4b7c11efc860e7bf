"""Thumbnail grids of gallery images, shared by Home and the Gallery.

Why thumbnails: the API serves small WebP thumbnails for exactly this, so a grid of many images
costs a few kilobytes each; the full PNG is fetched only when an image is opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import streamlit as st

from limner.ui import session
from limner.ui.api_types import ImageInfo
from limner.ui.components.feedback import attempt


def caption(image: ImageInfo, length: int = 60) -> str:
    prompt = image.prompt if len(image.prompt) <= length else image.prompt[: length - 1] + "…"
    seed = f" · seed {image.seed}" if image.seed is not None else ""
    return f"{prompt or '(no prompt)'}{seed}"


def thumbnail_grid(
    images: Sequence[ImageInfo], key: str, columns: int = 4, open_label: str | None = None
) -> str | None:
    """Draw the thumbnails; with ``open_label`` each has a button, and the clicked image's id is returned."""
    if not images:
        return None
    client = session.client()
    grid = st.columns(columns)
    clicked: str | None = None
    for index, image in enumerate(images):
        with grid[index % columns]:
            data = attempt(partial(client.thumbnail, image.id))
            if data is not None:
                st.image(data, caption=caption(image), width="stretch")
            if open_label and st.button(open_label, key=f"{key}:open:{image.id}", icon=":material/open_in_full:"):
                clicked = image.id
    return clicked
