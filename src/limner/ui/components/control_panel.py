"""The Generate page's control panel: a control picture, how it is read, and a preview of what the model sees.

Why the preview is computed here: the edge preprocessors (canny, scribble, lineart) are OpenCV
functions that need no model, so the studio shows at once the very edge map the server will make
from the picture (the server computes it again for the job; the studio never sends pixels it made).
A depth map needs the server's depth model, so its preview is the server's business.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import streamlit as st

from limner.ui.client import Upload

CONTROL_TYPES = {
    "canny": "Canny edges",
    "scribble": "Scribble (thick strokes)",
    "lineart": "Line art (thin lines)",
    "none": "Ready control image (edge map, depth map, pose skeleton)",
    "depth": "Depth (the server's depth model)",
}
DEFAULT_CONTROL_MODEL = "limner-tiny-control"


@dataclass(frozen=True)
class ControlChoice:
    """What the person chose in the panel; :meth:`body` is the job's ``controls`` entry once uploaded."""

    upload: Upload
    type: str
    weight: float
    model: str
    start: float
    end: float

    def body(self, image_id: str) -> dict[str, Any]:
        return {"image_id": image_id, "type": self.type, "weight": self.weight, "model": self.model,
                "start": self.start, "end": self.end}  # fmt: skip


def control_preview(data: bytes, kind: str, size: tuple[int, int] | None = None) -> bytes | None:
    """The preprocessed control picture as PNG bytes, or None when only the server can make it (depth)."""
    from PIL import Image

    from limner.core.requests import ControlSpec
    from limner.imaging.control_preprocess import preprocess

    if kind not in ("canny", "scribble", "lineart", "none"):
        return None
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    spec = ControlSpec.model_validate({"image": {"path": "preview"}, "type": kind})
    buffer = io.BytesIO()
    preprocess(picture, spec, size).save(buffer, format="PNG")
    return buffer.getvalue()


def control_panel(key: str) -> ControlChoice | None:
    """The panel's widgets; the choice once a picture is given (None without one)."""
    file = st.file_uploader("Control picture (drop a file here)", type=["png", "jpg", "jpeg", "webp"],
                            key=f"{key}.file")  # fmt: skip
    left, middle, right = st.columns(3)
    kind = left.selectbox("Read it as", list(CONTROL_TYPES), format_func=CONTROL_TYPES.__getitem__, key=f"{key}.type")
    weight = middle.slider("Weight", 0.0, 2.0, value=1.0, step=0.05, key=f"{key}.weight")
    model = right.text_input(
        "ControlNet or T2I-Adapter", value=DEFAULT_CONTROL_MODEL, key=f"{key}.model",
        help="A hub id (owner/name), a registered name, or limner-tiny-control (a canny ControlNet for limner-tiny).",
    )  # fmt: skip
    start, end = st.slider("Acts during (fraction of the steps)", 0.0, 1.0, value=(0.0, 1.0), step=0.05,
                           key=f"{key}.range")  # fmt: skip
    if file is None:
        st.caption("Drop a picture to guide the composition with its edges (or a ready control image).")
        return None
    data = file.getvalue()
    picture, preview = st.columns(2)
    picture.caption("Control picture")
    picture.image(data, width="stretch")
    preview.caption("What the model sees")
    try:
        shown = control_preview(data, kind)
    except (OSError, ValueError) as error:
        preview.error(f"This picture cannot be read: {error}")
        return None
    if shown is None:
        preview.info("The server makes the depth map with its depth model when the job runs.")
    else:
        preview.image(shown, width="stretch")
    return ControlChoice(Upload(file.name, data), kind, float(weight), model.strip(), float(start), float(end))
