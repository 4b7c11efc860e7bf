"""Thumbnail grids of gallery images, shared by Home, the Gallery and batch results.

Why thumbnails: the API serves small WebP thumbnails for exactly this, so a grid of many images
costs a few kilobytes each; the full PNG is fetched only when an image is opened. Why the CSS: tiles
of pictures with other shapes and captions of other lengths made rows that did not line up; each
tile is a square picture with a one-line caption (the whole prompt is in the picture's details).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import streamlit as st

from limner.ui import session
from limner.ui.api_types import ImageInfo
from limner.ui.components.feedback import attempt

_GRID_CSS = """<style>
.st-key-{key}-grid [data-testid="stImage"] img {{
  aspect-ratio: 1 / 1; object-fit: contain; background: rgba(128, 128, 128, 0.08); border-radius: 0.4rem;
}}
.st-key-{key}-grid [data-testid="stImageCaption"] {{
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
}}
</style>"""


def caption(image: ImageInfo, length: int = 60) -> str:
    """The prompt (shortened at a word boundary) and the seed; uploads are named as such."""
    prompt = image.prompt
    if len(prompt) > length:
        prompt = prompt[: length - 1].rsplit(" ", 1)[0] + "…"
    if not prompt:
        prompt = {"upload": "uploaded picture", "imported": "imported picture"}.get(image.kind, "(no prompt)")
    seed = f" · seed {image.seed}" if image.seed is not None else ""
    return f"{prompt}{seed}"


def thumbnail_grid(
    images: Sequence[ImageInfo], key: str, columns: int = 4, open_label: str | None = None
) -> str | None:
    """Draw the thumbnails; with ``open_label`` each has a button, and the clicked image's id is returned."""
    if not images:
        return None
    client = session.client()
    st.html(_GRID_CSS.format(key=key))
    clicked: str | None = None
    with st.container(key=f"{key}-grid"):
        for start in range(0, len(images), columns):  # one st.columns per row: rows line up
            row = st.columns(columns)
            for column, image in zip(row, images[start : start + columns], strict=False):
                with column:
                    data = attempt(partial(client.thumbnail, image.id))
                    if data is not None:
                        st.image(data, caption=caption(image), width="stretch")
                    if open_label and st.button(
                        open_label, key=f"{key}:open:{image.id}", icon=":material/open_in_full:"
                    ):
                        clicked = image.id
    return clicked
