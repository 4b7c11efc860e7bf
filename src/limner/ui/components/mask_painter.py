"""Paint an inpainting mask over the start picture: brush size, eraser, invert, clear.

Why our own component: ``streamlit-drawable-canvas`` 0.12/0.13 fail at import on Streamlit 1.67
(components v2 asset declaration) and 0.9.x fails on ``background_image`` (``image_to_url``
moved); its ``-fix`` fork imports but has neither an eraser nor invert. This is a small
``st.components.v2`` component instead: HTML/JS/CSS in ``assets/`` (read here, no build step,
no dependency), mounted in the page's DOM. The browser keeps the mask at the picture's own size
and returns it as a PNG data URL after every stroke; :func:`mask_from_data_url` checks it and
makes it a plain black-and-white PNG, uploaded like a mask file.
"""

from __future__ import annotations

import base64
import binascii
import io
from functools import cache
from importlib import resources
from typing import Any

import streamlit as st
from PIL import Image, UnidentifiedImageError

_DATA_URL_PREFIX = "data:image/png;base64,"
DISPLAY_WIDTH = 384


@cache
def _renderer() -> Any:
    """Register the component once per process (a registry entry, not page state)."""
    assets = resources.files("limner.ui.components").joinpath("assets")
    return st.components.v2.component(
        "limner.mask_painter",
        js=assets.joinpath("mask_painter.js").read_text(encoding="utf-8"),
        css=assets.joinpath("mask_painter.css").read_text(encoding="utf-8"),
    )


def picture_data_url(data: bytes) -> tuple[str, int, int]:
    """The start picture as a PNG data URL, and its size (the mask is made at this size)."""
    with Image.open(io.BytesIO(data)) as picture:
        rgb = picture.convert("RGB")
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return _DATA_URL_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii"), rgb.width, rgb.height


def mask_from_data_url(url: object, size: tuple[int, int]) -> bytes | None:
    """A painted mask as PNG bytes (L mode, 0 or 255, the picture's size); ``None`` if empty or not a PNG."""
    if not isinstance(url, str) or not url.startswith(_DATA_URL_PREFIX):
        return None
    try:
        raw = base64.b64decode(url[len(_DATA_URL_PREFIX) :], validate=True)
        with Image.open(io.BytesIO(raw)) as painted:
            gray = painted.convert("L")
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError):
        return None
    if gray.size != size:
        gray = gray.resize(size, Image.Resampling.NEAREST)
    mask = gray.point(lambda value: 255 if value > 127 else 0)
    if mask.getbbox() is None:  # nothing painted
        return None
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def mask_painter(picture: bytes, key: str, width: int = DISPLAY_WIDTH) -> bytes | None:
    """Draw the painter over ``picture``; return the mask painted so far (PNG bytes) or ``None``."""
    url, picture_width, picture_height = picture_data_url(picture)
    try:
        renderer = _renderer()
    except OSError:  # an installation without the component's files (package data left out)
        st.info("The mask painter is missing from this installation: upload a mask file instead.")
        return None
    result = renderer(
        key=key,
        data={"image": url, "width": picture_width, "height": picture_height, "size": width},
        default={"mask": None},
        on_mask_change=lambda: None,
        height="content",
    )
    return mask_from_data_url(getattr(result, "mask", None), (picture_width, picture_height))
