"""``info.md`` and ``info.json`` beside a batch item's images: the idea and each image's parameters.

Why both: people read the Markdown in a file browser or on a git host; tools read the JSON, which
carries each image's full record (the same one embedded in its PNG).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from limner.core.records import ImageRecord
from limner.prompts.ideas import PromptIdea

INFO_JSON = "info.json"
INFO_MD = "info.md"


def item_info(idea: PromptIdea, images: list[tuple[str, ImageRecord]], *, batch_id: str, index: int) -> dict[str, Any]:
    """The machine-readable description of one item (what ``info.json`` holds)."""
    first = images[0][1] if images else None
    return {
        "title": idea.title,
        "description": idea.description,
        "metatags": idea.metatags,
        "prompt": idea.prompt,
        "negative_prompt": idea.negative_prompt,
        "batch_id": batch_id,
        "index": index,
        "provider": first.provider if first else None,
        "model": first.model_name if first else None,
        "images": [_image_entry(name, record) for name, record in images],
    }


def _image_entry(name: str, record: ImageRecord) -> dict[str, Any]:
    request = record.request
    return {
        "file": name,
        "seed": record.seed,
        "width": record.width,
        "height": record.height,
        "provider": record.provider,
        "model": record.model_name,
        "steps": request.steps if _took_effect(record, "steps") else None,
        "guidance_scale": request.guidance_scale if _took_effect(record, "guidance_scale") else None,
        "scheduler": request.scheduler.value if request.scheduler else record.scheduler or None,
        "revised_prompt": record.revised_prompt,
        "provider_params": record.provider_details.get("params"),
        "record": record.model_dump(mode="json"),
    }


def _took_effect(record: ImageRecord, field: str) -> bool:
    """Local runs use every field; a provider only those it was sent (its defaults are not ours to claim)."""
    if record.provider == "local" or record.applied is not None:
        return record.took_effect(field)
    # A record written before ``applied`` existed: judge from what the request set and the provider ignored.
    return field in record.request.model_fields_set and field not in record.provider_details.get("ignored", [])


def write_item_info(folder: Path, info: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INFO_JSON).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / INFO_MD).write_text(info_markdown(info), encoding="utf-8")


def info_markdown(info: dict[str, Any]) -> str:
    """The same content as ``info.json``, for people."""
    lines = [f"# {_one_line(info['title'])}", ""]
    if info["description"]:
        lines += [info["description"], ""]
    if info["metatags"]:
        lines += [f"**Tags:** {', '.join(info['metatags'])}", ""]
    lines += ["## Prompt", "", "```text", info["prompt"], "```", ""]
    if info["negative_prompt"]:
        lines += ["**Negative prompt:**", "", "```text", info["negative_prompt"], "```", ""]
    lines += ["## Images", ""]
    for image in info["images"]:
        lines += [f"### {image['file']}", "", f"![{image['file']}]({image['file']})", ""]
        rows = [
            ("provider", image["provider"]),
            ("model", image["model"]),
            ("size", f"{image['width']}x{image['height']}"),
            ("seed", image["seed"]),
            ("steps", image["steps"]),
            ("guidance", image["guidance_scale"]),
            ("scheduler", image["scheduler"]),
            ("revised prompt", image["revised_prompt"]),
        ]
        lines += [f"- **{key}:** {_one_line(str(value))}" for key, value in rows if value not in (None, "")]
        lines.append("")
    lines.append(f"_Batch {info['batch_id']}, item {info['index'] + 1}._")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())
