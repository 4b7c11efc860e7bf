"""A finished batch as a zip: one folder with the pictures, ``info.md`` and ``info.json``.

Why built in the UI: the Prompt lab runs a batch as one job per prompt over ``/v1/jobs`` (what
the server's batch does too), so the UI holds the results and packs them the way ``limner batch``
lays out its folder: pictures named ``NNN-SEED.png`` (never from user text), a human-readable
``info.md`` and the same facts as JSON.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from limner.core.slugs import slugify


@dataclass(frozen=True)
class BatchPicture:
    image_id: str
    seed: int | None
    png: bytes
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchEntry:
    """One prompt of the batch and how it ended."""

    title: str
    prompt: str
    negative_prompt: str = ""
    status: str = "succeeded"
    error: str | None = None
    pictures: tuple[BatchPicture, ...] = ()


def folder_name(title: str) -> str:
    """The zip's folder (and file) name: the slug ``limner batch`` would give the title, else ``batch``."""
    return slugify(title, fallback="batch")


def file_name(entry_index: int, picture_index: int, picture: BatchPicture) -> str:
    seed = picture.seed if picture.seed is not None else "noseed"
    return f"{entry_index + 1:03d}-{picture_index + 1}-{seed}.png"


def info_json(title: str, entries: Sequence[BatchEntry]) -> str:
    items = [
        {
            "title": entry.title,
            "prompt": entry.prompt,
            "negative_prompt": entry.negative_prompt,
            "status": entry.status,
            "error": entry.error,
            "images": [
                {
                    "file": file_name(index, number, picture),
                    "image_id": picture.image_id,
                    "seed": picture.seed,
                    "parameters": picture.parameters,
                }
                for number, picture in enumerate(entry.pictures)
            ],
        }
        for index, entry in enumerate(entries)
    ]
    return json.dumps({"title": title, "items": items}, indent=2, default=str)


def info_md(title: str, entries: Sequence[BatchEntry]) -> str:
    lines = [f"# {title}", "", f"{len(entries)} prompts.", ""]
    for index, entry in enumerate(entries):
        lines += [f"## {index + 1}. {entry.title or entry.prompt[:60]}", "", f"**Prompt:** {entry.prompt}", ""]
        if entry.negative_prompt:
            lines += [f"**Negative prompt:** {entry.negative_prompt}", ""]
        if entry.status != "succeeded":
            lines += [f"**Status:** {entry.status}" + (f" ({entry.error})" if entry.error else ""), ""]
        for number, picture in enumerate(entry.pictures):
            request = dict(picture.parameters.get("request") or {})
            settings = ", ".join(
                f"{label}: {value}"
                for label, value in (
                    ("seed", picture.seed),
                    ("model", picture.parameters.get("model_name") or request.get("model")),
                    ("size", f"{picture.parameters.get('width')}x{picture.parameters.get('height')}"),
                    ("steps", request.get("steps")),
                    ("guidance", request.get("guidance_scale")),
                )
                if value is not None
            )
            name = file_name(index, number, picture)
            lines += [f"- ![{name}]({name}) `{name}`: {settings}"]
        lines.append("")
    return "\n".join(lines)


def build_zip(title: str, entries: Sequence[BatchEntry]) -> bytes:
    folder = folder_name(title)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, entry in enumerate(entries):
            for number, picture in enumerate(entry.pictures):
                archive.writestr(f"{folder}/{file_name(index, number, picture)}", picture.png)
        archive.writestr(f"{folder}/info.md", info_md(title, entries))
        archive.writestr(f"{folder}/info.json", info_json(title, entries))
    return buffer.getvalue()
