"""The shared path of every generating command: build the request, run it, save the PNGs.

Why one function: generate, img2img, inpaint and edit differ only in the request fields and the
input pictures; validation, progress, saving and error reporting are the same for all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from limner.cli.local_store import local_character_inputs, local_model_aliases, remember_local_character
from limner.cli.progress import step_progress
from limner.config import Settings
from limner.core.requests import LoraSpec, parse_size
from limner.engines.base import TaskInputs
from limner.engines.router import build_engine
from limner.imaging.inputs import open_image_file
from limner.imaging.png import save_png
from limner.presets import build_request, load_presets
from limner.styles import load_styles


def request_fields(
    *,
    task: str,
    prompt: str | None,
    negative: str | None,
    model: str | None,
    size: str | None,
    steps: int | None,
    guidance: float | None,
    seed: int | None,
    num_images: int | None,
    scheduler: str | None,
    loras: list[str] | None,
    **extra: Any,
) -> dict[str, Any]:
    """Collect the options the user actually gave (None means: use the preset or default)."""
    fields: dict[str, Any] = {
        "task": task,
        "prompt": prompt,
        "negative_prompt": negative,
        "model": model,
        "steps": steps,
        "guidance_scale": guidance,
        "seed": seed,
        "num_images": num_images,
        "scheduler": scheduler,
        **extra,
    }
    if size is not None:
        fields["width"], fields["height"] = parse_size(size)
    if loras:
        fields["loras"] = [LoraSpec.parse(text) for text in loras]
    return {key: value for key, value in fields.items() if value is not None}


def run_and_save(
    settings: Settings,
    fields: dict[str, Any],
    preset: str | None,
    out_dir: Path | None,
    console: Console,
    init_image: Path | None = None,
    mask_image: Path | None = None,
    references: list[Path] | None = None,
) -> list[Path]:
    """Validate everything, generate, write PNGs, and return their paths. Nothing is written on error."""
    if init_image is not None:
        fields["init_image"] = str(init_image)
    if mask_image is not None:
        fields["mask_image"] = str(mask_image)
    if references:
        fields["reference_images"] = [str(path) for path in references]
    request = build_request(fields, load_presets(settings.presets_file), preset, load_styles(settings.styles_file))
    pictures = tuple(_open(path, "reference_images", settings, "RGB") for path in references or [])
    saved = local_character_inputs(settings, request.character) if request.character else None
    inputs = TaskInputs(
        init_image=_open(init_image, "init_image", settings, "RGB"),
        mask_image=_open(mask_image, "mask_image", settings, "L"),
        reference_images=saved.images if saved else pictures,
        reference_weights=tuple(saved.weights) if saved else None,
        reference_embeddings=saved.embeddings if saved else {},
    )
    engine = build_engine(settings, aliases=local_model_aliases(settings))
    engine.validate(request, inputs)  # every check that needs no weights, before the spinner starts
    with step_progress(console, f"{request.task.value}") as on_progress:
        result = engine.run(request, inputs, progress=on_progress)
    if request.character and result.reference_embeddings:
        remember_local_character(settings, request.character, result.reference_embeddings)
    target = out_dir or settings.output_dir
    return [save_png(item, target) for item in result.images]


def _open(path: Path | None, param: str, settings: Settings, mode: str) -> Any:
    if path is None:
        return None
    return open_image_file(
        path, param=param, max_bytes=settings.max_input_image_bytes, max_pixels=settings.max_pixels, mode=mode
    )
