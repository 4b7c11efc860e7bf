"""Text forms of an image's parameters: AUTOMATIC1111's ``parameters`` chunk and limner's JSON.

Why both: the A1111 text is what every other tool (web UIs, civitai, image browsers) reads; the
JSON keeps everything limner needs to reproduce the image exactly. Pure string work, no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from limner.core.records import ImageRecord
from limner.core.requests import SchedulerName

A1111_KEY = "parameters"
LIMNER_KEY = "limner"

A1111_SAMPLER_NAMES: dict[SchedulerName, str] = {
    SchedulerName.EULER: "Euler",
    SchedulerName.EULER_A: "Euler a",
    SchedulerName.DPMPP_2M: "DPM++ 2M",
    SchedulerName.DPMPP_2M_KARRAS: "DPM++ 2M Karras",
    SchedulerName.DDIM: "DDIM",
    SchedulerName.LCM: "LCM",
    SchedulerName.UNIPC: "UniPC",
    SchedulerName.HEUN: "Heun",
    SchedulerName.PNDM: "PLMS",
}
_NEGATIVE_PREFIX = "Negative prompt: "
# "Key: value" pairs separated by ", "; a value may be a quoted string containing commas.
_PAIR = re.compile(r'\s*([\w ][\w \-/+]*): ("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def to_a1111_parameters(record: ImageRecord) -> str:
    """Format a record the way AUTOMATIC1111 writes its ``parameters`` PNG text chunk."""
    request = record.request
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(_NEGATIVE_PREFIX + request.negative_prompt)
    pairs: list[tuple[str, str]] = [
        ("Steps", str(request.steps)),
        ("Sampler", _sampler_label(record)),
        ("CFG scale", f"{request.guidance_scale:g}"),
        ("Seed", str(record.seed)),
        ("Size", f"{record.width}x{record.height}"),
        ("Model", record.model_name),
    ]
    if request.task.needs_init_image and request.task.value != "edit":
        pairs.append(("Denoising strength", f"{request.strength:g}"))
    if request.task.value == "edit":
        pairs.append(("Image CFG scale", f"{request.image_guidance_scale:g}"))
    if request.loras:
        pairs.append(("Lora hashes", json.dumps(", ".join(f"{lo.ref}:{lo.weight:g}" for lo in request.loras))))
    pairs.append(("Task", request.task.value))
    pairs.append(("Version", f"limner {record.limner_version}"))
    lines.append(", ".join(f"{key}: {value}" for key, value in pairs))
    return "\n".join(lines)


def _sampler_label(record: ImageRecord) -> str:
    name = record.request.scheduler
    if name is None:
        return record.scheduler or "default"
    return A1111_SAMPLER_NAMES[name]


def parse_a1111_parameters(text: str) -> dict[str, Any]:
    """Parse an A1111 ``parameters`` text into a dict: prompt, negative prompt and every pair.

    Written by A1111, Forge, ComfyUI exporters and limner alike: the last line holds the
    ``Key: value`` pairs, earlier lines the prompt and the ``Negative prompt:`` block.
    """
    lines = text.strip("\n").split("\n")
    settings_line = lines[-1] if len(lines) > 1 and _PAIR.match(lines[-1]) and "Steps: " in lines[-1] else ""
    body = lines[:-1] if settings_line else lines
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in body:
        if line.startswith(_NEGATIVE_PREFIX):
            target = negative_lines
            line = line[len(_NEGATIVE_PREFIX) :]
        target.append(line)
    parsed: dict[str, Any] = {"Prompt": "\n".join(prompt_lines), "Negative prompt": "\n".join(negative_lines)}
    for match in _PAIR.finditer(settings_line):
        key, value = match.group(1).strip(), match.group(2).strip()
        if value.startswith('"') and value.endswith('"'):
            value = json.loads(value)
        parsed[key] = value
    return parsed


def to_limner_json(record: ImageRecord) -> str:
    """The full record as compact JSON, for the ``limner`` PNG text chunk."""
    return record.model_dump_json(exclude_none=False)


def from_limner_json(text: str) -> ImageRecord:
    return ImageRecord.model_validate_json(text)
