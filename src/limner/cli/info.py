"""``limner info``, ``limner presets`` and ``limner styles``: read-only views of PNGs and catalogues.

Each imports what it reads (PNG metadata, preset and style files) inside its body, so that the
commands cost nothing at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.errors import user_errors
from limner.core.errors import InvalidRequestError

if TYPE_CHECKING:
    from limner.core.records import ImageRecord


def styles() -> None:
    """List the style presets (built-in and from LIMNER_STYLES_FILE)."""
    from limner.config import Settings
    from limner.styles import load_styles

    with user_errors():
        found = load_styles(Settings().styles_file)
    table = Table("name", "LoRA", "fits", "description")
    for item in found.values():
        table.add_row(item.name, item.lora or "", item.base or "any", item.description)
    Console().print(table)


def info(
    image: Annotated[Path, typer.Argument(help="A PNG written by limner, AUTOMATIC1111 or a compatible tool.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw stored parameters as JSON.")] = False,
) -> None:
    """Print the generation parameters stored in a PNG."""
    from limner.imaging.png import read_parameters

    with user_errors():
        if not image.is_file():
            raise InvalidRequestError(f"no such file: {image}", param="image")
        record, a1111 = read_parameters(image)
        if record is None and a1111 is None:
            raise InvalidRequestError(f"{image.name} holds no generation parameters", param="image")
    if as_json:
        payload = record.model_dump(mode="json") if record is not None else a1111
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(show_header=False, box=None)
    rows = _record_rows(record) if record is not None else [(k, str(v)) for k, v in (a1111 or {}).items()]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/bold]", value)
    Console().print(table)


def _record_rows(record: ImageRecord) -> list[tuple[str, str]]:
    """What shaped the image: every field for a local run; for a remote one only what the provider was sent."""
    request = record.request
    tunable = [
        ("negative_prompt", "negative prompt", request.negative_prompt),
        ("seed", "seed", str(record.seed)),
        ("steps", "steps", str(request.steps)),
        ("guidance_scale", "guidance", f"{request.guidance_scale:g}"),
        ("scheduler", "scheduler", request.scheduler.value if request.scheduler else f"default ({record.scheduler})"),
    ]
    if request.task.value in ("img2img", "inpaint"):
        tunable.append(("strength", "strength", f"{request.strength:g}"))
    if request.task.value == "edit":
        tunable.append(("image_guidance_scale", "image guidance", f"{request.image_guidance_scale:g}"))
    rows = [("task", request.task.value), ("prompt", request.prompt), ("model", record.model_name),
            ("size", f"{record.width}x{record.height}")]  # fmt: skip
    rows += [(label, value) for field, label, value in tunable if record.took_effect(field)]
    if record.provider != "local":
        rows.append(("provider", record.provider))
    if request.loras:
        rows.append(("loras", ", ".join(f"{lo.ref}:{lo.weight:g}" for lo in request.loras)))
    if record.character or record.ip_adapter:
        references = record.character or f"{record.reference_count} reference pictures"
        rows.append(("character", f"{references} (IP-Adapter {record.ip_adapter or 'default'}, "
                                  f"scale {request.ip_adapter_scale:g})"))  # fmt: skip
    if request.preset:
        rows.append(("preset", request.preset))
    rows += [
        ("pipeline", record.pipeline),
        ("time", f"load {record.timings.load_s:.2f}s, inference {record.timings.inference_s:.2f}s"),
        ("limner", record.limner_version),
    ]
    return rows


def presets() -> None:
    """List the presets (built-in and from LIMNER_PRESETS_FILE): a model plus defaults, for --preset."""
    from limner.config import Settings
    from limner.presets import load_presets

    with user_errors():
        found = load_presets(Settings().presets_file)
    table = Table("name", "task", "model", "description")
    for preset in found.values():
        table.add_row(preset.name, preset.task.value if preset.task else "", preset.model or "", preset.description)
    Console().print(table)
