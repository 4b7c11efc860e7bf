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
# When a request names no sampler, the model's own scheduler runs and the record holds its
# diffusers class name; A1111 tools know samplers by these names instead.
_A1111_BY_CLASS: dict[str, str] = {
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "DDIMScheduler": "DDIM",
    "LCMScheduler": "LCM",
    "UniPCMultistepScheduler": "UniPC",
    "HeunDiscreteScheduler": "Heun",
    "PNDMScheduler": "PLMS",
    "LMSDiscreteScheduler": "LMS",
    "KDPM2DiscreteScheduler": "DPM2",
    "KDPM2AncestralDiscreteScheduler": "DPM2 a",
    "DPMSolverSDEScheduler": "DPM++ SDE",
    "DPMSolverSinglestepScheduler": "DPM++ 2S",
    "DEISMultistepScheduler": "DEIS",
    "DDPMScheduler": "DDPM",
    "TCDScheduler": "TCD",
    "FlowMatchEulerDiscreteScheduler": "Euler",
}
_SCHEDULER_BY_A1111 = {label.lower(): name for name, label in A1111_SAMPLER_NAMES.items()}
_NEGATIVE_PREFIX = "Negative prompt: "
# "Key: value" pairs separated by ", "; a value may be a quoted string containing commas.
_PAIR = re.compile(r'\s*([\w ][\w \-/+]*): ("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def to_a1111_parameters(record: ImageRecord) -> str:
    """Format a record the way AUTOMATIC1111 writes its ``parameters`` PNG text chunk."""
    request = record.request
    lines = [request.prompt]
    if request.negative_prompt and record.took_effect("negative_prompt"):
        lines.append(_NEGATIVE_PREFIX + request.negative_prompt)
    candidates: list[tuple[str, str, str]] = [
        ("steps", "Steps", str(request.steps)),
        ("scheduler", "Sampler", _sampler_label(record)),
        ("guidance_scale", "CFG scale", f"{request.guidance_scale:g}"),
        ("seed", "Seed", str(record.seed)),
    ]
    # A remote provider's image names only what the provider was sent (its own defaults are not ours).
    pairs = [(label, value) for field, label, value in candidates if record.took_effect(field)]
    pairs += [("Size", f"{record.width}x{record.height}"), ("Model", record.model_name)]
    if request.task.takes_strength and record.took_effect("strength"):
        pairs.append(("Denoising strength", f"{request.strength:g}"))
    if request.hires_scale is not None:  # A1111's hires-fix fields
        pairs.append(("Denoising strength", f"{request.hires_strength:g}"))
        pairs.append(("Hires upscale", f"{request.hires_scale:g}"))
        pairs.append(("Hires steps", str(request.hires_steps or request.steps)))
        pairs.append(("Hires upscaler", json.dumps(request.hires_upscaler)))
    if request.task.value == "upscale":  # A1111's Extras tab fields
        pairs.append(("Postprocess upscaler", json.dumps(request.upscaler)))
        if request.upscale_factor is not None:
            pairs.append(("Postprocess upscale by", f"{request.upscale_factor:g}"))
    if request.task.value == "edit" and record.took_effect("image_guidance_scale"):
        pairs.append(("Image CFG scale", f"{request.image_guidance_scale:g}"))
    if record.character or record.ip_adapter:
        pairs.append(("IP-Adapter", json.dumps(record.ip_adapter or "default")))
        pairs.append(("Character", json.dumps(record.character or f"{record.reference_count} reference pictures")))
    for number, control in enumerate(request.controls):
        unit = (f"Module: {control.type.value}, Model: {control.model or 'none'}, Weight: {control.weight:g}, "
                f"Guidance Start: {control.start:g}, Guidance End: {control.end:g}")  # fmt: skip
        pairs.append((f"ControlNet {number}", json.dumps(unit)))
    if request.loras:
        pairs.append(("Lora hashes", json.dumps(", ".join(f"{lo.ref}:{lo.weight:g}" for lo in request.loras))))
    pairs.append(("Task", request.task.value))
    pairs.append(("Version", f"limner {record.limner_version}"))
    lines.append(", ".join(f"{key}: {value}" for key, value in pairs))
    return "\n".join(lines)


def _sampler_label(record: ImageRecord) -> str:
    return a1111_sampler(record.request.scheduler, record.scheduler)


def a1111_sampler(scheduler: SchedulerName | None, scheduler_class: str = "") -> str:
    """The A1111 sampler name of a run: from the sampler asked for, else from the diffusers class that ran.

    A class limner has no A1111 name for keeps its own name, so nothing is lost.
    """
    if scheduler is not None:
        return A1111_SAMPLER_NAMES[scheduler]
    return _A1111_BY_CLASS.get(scheduler_class, scheduler_class or "default")


def scheduler_from_a1111(sampler: str, schedule_type: str = "") -> SchedulerName | None:
    """limner's sampler for an A1111 ``Sampler`` (and newer A1111's ``Schedule type``), or None if it has none.

    A1111 1.9+ writes ``Sampler: DPM++ 2M, Schedule type: Karras`` where older versions wrote
    ``Sampler: DPM++ 2M Karras``; both read as ``dpm++_2m_karras``.
    """
    label = sampler.strip().lower()
    if schedule_type.strip().lower() == "karras" and not label.endswith(" karras"):
        label += " karras"
    return _SCHEDULER_BY_A1111.get(label)


def parse_a1111_parameters(text: str) -> dict[str, Any]:
    """Parse an A1111 ``parameters`` text into a dict: prompt, negative prompt and every pair.

    Written by A1111, Forge, ComfyUI exporters and limner alike: the last line holds the
    ``Key: value`` pairs, earlier lines the prompt and the ``Negative prompt:`` block. When the
    ``Sampler`` is one limner runs, ``scheduler`` holds its :class:`SchedulerName` value too.
    """
    lines = text.rstrip("\n").split("\n")  # an empty prompt still has its (empty) first line
    # As A1111 decides it: the last line holds the settings when it has at least three pairs (a remote
    # provider's image has no "Steps").
    settings_line = lines[-1] if len(lines) > 1 and len(_PAIR.findall(lines[-1])) >= 3 else ""
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
    scheduler = scheduler_from_a1111(str(parsed.get("Sampler", "")), str(parsed.get("Schedule type", "")))
    if scheduler is not None:
        parsed["scheduler"] = scheduler.value
    return parsed


def to_limner_json(record: ImageRecord) -> str:
    """The full record as compact JSON, for the ``limner`` PNG text chunk."""
    return record.model_dump_json(exclude_none=False)


def from_limner_json(text: str) -> ImageRecord:
    return ImageRecord.model_validate_json(text)
