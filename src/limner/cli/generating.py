"""The generating commands: ``generate``, ``img2img``, ``inpaint``, ``edit`` and ``character``.

Each declares only the options particular to it; the shared ones come from
:func:`~limner.cli.options.with_generation_options`, and every command ends in :func:`_generate`,
the one body that builds the request, runs it and prints the paths of the PNGs written.

Model code (``cli.generation`` and what it imports: the engines, torch, diffusers) is imported
inside :func:`_generate`, so that ``--help`` and option errors cost no model imports.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from limner.cli.errors import user_errors
from limner.cli.options import (
    AdapterOpt,
    AdapterScaleOpt,
    CharacterOpt,
    ControlOptions,
    GenerationOptions,
    HiresOpt,
    HiresStepsOpt,
    HiresStrengthOpt,
    HiresUpscalerOpt,
    ImageArg,
    PromptArg,
    ReferenceOpt,
    StrengthOpt,
    StyleOpt,
    with_control_options,
    with_generation_options,
)


def _generate(
    task: str,
    prompt: str | None,
    options: GenerationOptions,
    *,
    init_image: Path | None = None,
    mask_image: Path | None = None,
    references: list[Path] | None = None,
    controls: ControlOptions | None = None,
    **extra: Any,
) -> None:
    """Build the request from the options given, generate, and print each PNG's path."""
    from limner.cli.generation import request_fields, run_and_save
    from limner.config import Settings

    with user_errors():
        settings = Settings()
        fields = request_fields(
            task=task, prompt=prompt, negative=options.negative, model=options.model, size=options.size,
            steps=options.steps, guidance=options.guidance, seed=options.seed, num_images=options.num_images,
            scheduler=options.scheduler, loras=options.lora, decode=options.decode, embeddings=options.embedding,
            combinatorial=options.combinatorial or None, **extra,
        )  # fmt: skip
        if controls is not None:
            from limner.cli.control import control_fields

            fields.update(control_fields(controls))
        paths = run_and_save(settings, fields, options.preset, options.out, Console(stderr=True),
                             init_image=init_image, mask_image=mask_image, references=references,
                             save_control=controls is not None and controls.save_control)  # fmt: skip
    for path in paths:
        typer.echo(str(path))


@with_generation_options()
@with_control_options
def generate(
    prompt: PromptArg,
    style: StyleOpt = None,
    character: CharacterOpt = None,
    reference: ReferenceOpt = None,
    ip_adapter: AdapterOpt = None,
    ip_adapter_scale: AdapterScaleOpt = None,
    hires: HiresOpt = None,
    hires_strength: HiresStrengthOpt = None,
    hires_upscaler: HiresUpscalerOpt = None,
    hires_steps: HiresStepsOpt = None,
    *,
    controls: ControlOptions,
    options: GenerationOptions,
) -> None:
    """Text to image. Prints the path of each PNG written."""
    _generate("txt2img", prompt, options, references=reference, style=style, character=character,
              ip_adapter=ip_adapter, ip_adapter_scale=ip_adapter_scale, controls=controls, hires_scale=hires,
              hires_strength=hires_strength, hires_upscaler=hires_upscaler, hires_steps=hires_steps)  # fmt: skip


@with_generation_options()
@with_control_options
def img2img(
    image: ImageArg,
    prompt: PromptArg,
    strength: StrengthOpt = None,
    *,
    controls: ControlOptions,
    options: GenerationOptions,
) -> None:
    """Image to image: redraw IMAGE following PROMPT, keeping its layout (lower --strength keeps more)."""
    _generate("img2img", prompt, options, init_image=image, strength=strength, controls=controls)


@with_generation_options()
@with_control_options
def inpaint(
    image: ImageArg,
    prompt: PromptArg,
    mask: Annotated[Path, typer.Option("--mask", help="Mask picture: white = repaint, black = keep.")],
    strength: StrengthOpt = None,
    *,
    controls: ControlOptions,
    options: GenerationOptions,
) -> None:
    """Inpaint: repaint the white part of --mask in IMAGE following PROMPT."""
    _generate("inpaint", prompt, options, init_image=image, mask_image=mask, strength=strength, controls=controls)


@with_generation_options()
def edit(
    image: ImageArg,
    instruction: Annotated[
        str | None, typer.Argument(help="What to change, e.g. 'Cartoonize the following image'.")
    ] = None,
    image_guidance: Annotated[
        float | None, typer.Option("--image-guidance", help="How closely to stick to the input picture.")
    ] = None,
    *,
    options: GenerationOptions,
) -> None:
    """Instruction edit with an InstructPix2Pix-class model (e.g. --preset cartoonize)."""
    _generate("edit", instruction, options, init_image=image, image_guidance_scale=image_guidance)


class CharacterProvider(StrEnum):
    """Where ``limner character`` runs: the hosted models take one picture and their own styles."""

    LOCAL = "local"
    REPLICATE = "replicate"


@with_generation_options(leave_out=("scheduler", "preset"))
def character(
    reference: Annotated[Path, typer.Argument(help="A picture of the character (PNG, JPEG or WebP).")],
    prompt: Annotated[str, typer.Argument(help="The scene, e.g. 'drinking beer in a bar'.")],
    style: StyleOpt = None,
    strength: Annotated[
        float | None, typer.Option("--strength", help="How strongly the reference binds (IP-Adapter scale).")
    ] = None,
    more: Annotated[list[Path] | None, typer.Option("--ref", help="More pictures of the same character.")] = None,
    ip_adapter: AdapterOpt = None,
    provider: Annotated[
        CharacterProvider,
        typer.Option(
            "--provider",
            help="local: IP-Adapter on a local model; replicate: the instantcharacter preset (REPLICATE_API_TOKEN).",
        ),
    ] = CharacterProvider.LOCAL,
    *,
    options: GenerationOptions,
) -> None:
    """The character in REFERENCE in a new scene (IP-Adapter, or Replicate's InstantCharacter), in a --style."""
    if provider is CharacterProvider.REPLICATE:
        model = options.model
        if model and not model.startswith("replicate:"):
            model = f"replicate:{model}"
        options = dataclasses.replace(options, model=model, preset="instantcharacter")
    _generate("character", prompt, options, references=[reference, *(more or [])], style=style,
              ip_adapter=ip_adapter, ip_adapter_scale=strength)  # fmt: skip


COMMANDS = (generate, img2img, inpaint, edit, character)
