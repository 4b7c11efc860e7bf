"""A preset's hub model that cannot be had here -> the built-in model that does the same task offline.

Why: ``--preset cartoonize`` names ``instruction-tuning-sd/cartoonizer``, a hub download. On a machine
with no hub (air-gapped, ``HF_HUB_OFFLINE=1``, or a network that cannot reach it) and no cached copy,
the preset used to fail when the model was loaded. The built-in limner-tiny-edit does the same task
(an InstructPix2Pix edit, trained with "cartoonize it" among its instructions) on 64px pictures with
no download, so an edit preset falls back to it, with a one-line note saying so. A model the user
names, a cached copy, or a hub that answers always wins: the fallback never replaces what could run.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from limner.core.requests import Task
from limner.presets import Preset

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PROBE_SECONDS = 2.0


@dataclass(frozen=True)
class Fallback:
    """The model used instead of a preset's, and the note to show the user."""

    model: str
    note: str


def hub_cached(repo_id: str) -> bool:
    """Whether the hub cache holds the model (its ``model_index.json``); never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "model_index.json"), str)
    except ValueError:  # not a valid repo id
        return False


def hub_reachable(timeout: float = _PROBE_SECONDS) -> bool:
    """Whether a download could start: not ``HF_HUB_OFFLINE``, and the hub endpoint accepts a connection."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def preset_fallback(preset: Preset, fields: Mapping[str, Any], edit_model: str) -> Fallback | None:
    """``edit_model`` in place of an edit preset's hub model when that model cannot be had, else None.

    ``fields`` are the user's own: a model named there is used as given.
    """
    model = preset.model
    if fields.get("model") or not model or preset.task is not Task.EDIT or model == edit_model:
        return None
    if not _HUB_ID.match(model) or Path(model).expanduser().exists() or hub_cached(model) or hub_reachable():
        return None
    return Fallback(
        edit_model,
        f"note: {model} (preset {preset.name}) is not installed and cannot be downloaded here; "
        f"using {edit_model} instead.",
    )
