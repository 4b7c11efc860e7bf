"""The Generate page's hires-fix panel: draw at the chosen size, then refine at a larger one.

Why a panel of its own: the hires fix adds four job fields (``hires_scale``, ``hires_strength``,
``hires_upscaler``, ``hires_steps``) that only text-to-image takes; keeping them here leaves the
Generate page one expander, and :func:`hires_fields` (pure, no Streamlit) testable on its own.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

UPSCALER_HELP = (
    "latent: enlarge the latents (soft; keep the denoise around 0.5). lanczos: enlarge the picture. Or an "
    "upscaler model: a registered name, owner/repo/file.safetensors (ESRGAN family) or an SD x4 upscaler hub id."
)


def hires_fields(enabled: bool, scale: float, strength: float, upscaler: str, steps: int | None) -> dict[str, Any]:
    """The job fields of the panel's choice ({} when switched off)."""
    if not enabled:
        return {}
    fields: dict[str, Any] = {"hires_scale": scale, "hires_strength": strength,
                              "hires_upscaler": upscaler.strip() or "latent"}  # fmt: skip
    if steps is not None:
        fields["hires_steps"] = steps
    return fields


def hires_panel(key: str) -> dict[str, Any]:
    """The panel's widgets; the job fields they ask for."""
    enabled = st.checkbox("Hires fix", key=f"{key}.on",
                          help="Text to image only. The pixel limit applies to the final size.")  # fmt: skip
    left, middle, right = st.columns(3)
    scale = left.number_input("Enlarge by", 1.25, 4.0, value=2.0, step=0.25, key=f"{key}.scale")
    strength = middle.slider("Refining denoise", 0.05, 1.0, value=0.5, step=0.05, key=f"{key}.strength")
    steps = right.number_input("Refining steps", 1, 1000, value=None, key=f"{key}.steps", placeholder="as Steps")
    upscaler = st.text_input("Enlarge with", value="latent", key=f"{key}.upscaler", help=UPSCALER_HELP)
    return hires_fields(enabled, float(scale), float(strength), upscaler, int(steps) if steps is not None else None)
