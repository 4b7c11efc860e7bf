"""``limner`` commands. Each parses its options and hands off to ``cli.generation``.

Exit codes: 0 success, 1 a failure that is not the user's input (download, runtime), 2 bad
input (any option, file or model reference; nothing is written), 130 canceled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

# Library chatter (download bars, optional-backend notices) is not for CLI users; set before imports.
for _variable, _value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                          ("DIFFUSERS_VERBOSITY", "error")):  # fmt: skip
    os.environ.setdefault(_variable, _value)

from limner.config import Settings  # noqa: E402
from limner.core.errors import (  # noqa: E402
    ConflictError,
    GenerationCanceledError,
    InvalidRequestError,
    LimnerError,
    NotFoundError,
)
from limner.core.requests import SchedulerName  # noqa: E402

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELED = 130

app = typer.Typer(
    name="limner",
    help="Self-hosted image generation: text-to-image, img2img, inpaint and instruction edits.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
dev_app = typer.Typer(help="Developer tools (tiny test models).", no_args_is_help=True)
app.add_typer(dev_app, name="dev")

SchedulerChoice = StrEnum("SchedulerChoice", {name.name: name.value for name in SchedulerName})  # type: ignore[misc]

PromptArg = Annotated[str, typer.Argument(help="What to draw.")]
NegativeOpt = Annotated[str | None, typer.Option("--negative", "-N", help="What to avoid.")]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Built-in name, hub id, diffusers folder or .safetensors file."),
]
SizeOpt = Annotated[str | None, typer.Option("--size", "-s", help="WIDTHxHEIGHT, multiples of 8.")]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="Denoising steps.")]
GuidanceOpt = Annotated[float | None, typer.Option("--guidance", "--cfg", help="Classifier-free guidance scale.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed of the first image; image i uses seed+i.")]
CountOpt = Annotated[int | None, typer.Option("--num-images", "-n", help="How many images.")]
SchedulerOpt = Annotated[SchedulerChoice | None, typer.Option("--scheduler", help="Sampler.")]
LoraOpt = Annotated[
    list[str] | None,
    typer.Option("--lora", help="LoRA as REF or REF:WEIGHT (.safetensors only); repeatable."),
]
PresetOpt = Annotated[str | None, typer.Option("--preset", "-p", help="Apply a preset (see `limner presets`).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: LIMNER_OUTPUT_DIR).")]
ImageArg = Annotated[Path, typer.Argument(help="Input picture (PNG, JPEG or WebP).")]
StyleOpt = Annotated[str | None, typer.Option("--style", help="A style preset (see `limner styles`).")]
CharacterOpt = Annotated[str | None, typer.Option("--character", help="A saved character (see `limner characters`).")]
ReferenceOpt = Annotated[
    list[Path] | None, typer.Option("--reference", help="Reference picture for the IP-Adapter (repeatable).")
]
AdapterOpt = Annotated[str | None, typer.Option("--ip-adapter", help="IP-Adapter .safetensors (file or hub path).")]
AdapterScaleOpt = Annotated[
    float | None, typer.Option("--ip-adapter-scale", help="How strongly the references bind (0-2, default 0.6).")
]
StrengthOpt = Annotated[
    float | None, typer.Option("--strength", help="How much to change the image: 0 keeps it, 1 redraws it.")
]


def _console() -> Console:
    return Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn limner's errors into one readable line and the documented exit code."""
    console = _console()
    try:
        yield
    except GenerationCanceledError:
        console.print("[yellow]canceled[/yellow]")
        raise typer.Exit(EXIT_CANCELED) from None
    except KeyboardInterrupt:
        console.print("[yellow]canceled[/yellow]")
        raise typer.Exit(EXIT_CANCELED) from None
    except (InvalidRequestError, NotFoundError, ConflictError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except LimnerError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILURE) from None
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        console.print(f"[red]error:[/red] {where}: {problem['msg']}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _settings() -> Settings:
    return Settings()


def _generate(build: Callable[[Settings, Console], list[Path]]) -> None:
    with user_errors():
        settings = _settings()
        console = _console()
        paths = build(settings, console)
    for path in paths:
        typer.echo(str(path))


@app.command()
def generate(
    prompt: PromptArg,
    negative: NegativeOpt = None,
    model: ModelOpt = None,
    size: SizeOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    seed: SeedOpt = None,
    num_images: CountOpt = None,
    scheduler: SchedulerOpt = None,
    lora: LoraOpt = None,
    preset: PresetOpt = None,
    style: StyleOpt = None,
    character: CharacterOpt = None,
    reference: ReferenceOpt = None,
    ip_adapter: AdapterOpt = None,
    ip_adapter_scale: AdapterScaleOpt = None,
    out: OutOpt = None,
) -> None:
    """Text to image. Prints the path of each PNG written."""
    from limner.cli.generation import request_fields, run_and_save

    def build(settings: Settings, console: Console) -> list[Path]:
        fields = request_fields(
            task="txt2img", prompt=prompt, negative=negative, model=model, size=size, steps=steps,
            guidance=guidance, seed=seed, num_images=num_images,
            scheduler=scheduler.value if scheduler else None, loras=lora, style=style, character=character,
            ip_adapter=ip_adapter, ip_adapter_scale=ip_adapter_scale,
        )  # fmt: skip
        return run_and_save(settings, fields, preset, out, console, references=reference)

    _generate(build)


@app.command()
def img2img(
    image: ImageArg,
    prompt: PromptArg,
    strength: StrengthOpt = None,
    negative: NegativeOpt = None,
    model: ModelOpt = None,
    size: SizeOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    seed: SeedOpt = None,
    num_images: CountOpt = None,
    scheduler: SchedulerOpt = None,
    lora: LoraOpt = None,
    preset: PresetOpt = None,
    out: OutOpt = None,
) -> None:
    """Image to image: redraw IMAGE following PROMPT, keeping its layout (lower --strength keeps more)."""
    from limner.cli.generation import request_fields, run_and_save

    def build(settings: Settings, console: Console) -> list[Path]:
        fields = request_fields(
            task="img2img", prompt=prompt, negative=negative, model=model, size=size, steps=steps,
            guidance=guidance, seed=seed, num_images=num_images,
            scheduler=scheduler.value if scheduler else None, loras=lora, strength=strength,
        )  # fmt: skip
        return run_and_save(settings, fields, preset, out, console, init_image=image)

    _generate(build)


@app.command()
def inpaint(
    image: ImageArg,
    prompt: PromptArg,
    mask: Annotated[Path, typer.Option("--mask", help="Mask picture: white = repaint, black = keep.")],
    strength: StrengthOpt = None,
    negative: NegativeOpt = None,
    model: ModelOpt = None,
    size: SizeOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    seed: SeedOpt = None,
    num_images: CountOpt = None,
    scheduler: SchedulerOpt = None,
    lora: LoraOpt = None,
    preset: PresetOpt = None,
    out: OutOpt = None,
) -> None:
    """Inpaint: repaint the white part of --mask in IMAGE following PROMPT."""
    from limner.cli.generation import request_fields, run_and_save

    def build(settings: Settings, console: Console) -> list[Path]:
        fields = request_fields(
            task="inpaint", prompt=prompt, negative=negative, model=model, size=size, steps=steps,
            guidance=guidance, seed=seed, num_images=num_images,
            scheduler=scheduler.value if scheduler else None, loras=lora, strength=strength,
        )  # fmt: skip
        return run_and_save(settings, fields, preset, out, console, init_image=image, mask_image=mask)

    _generate(build)


@app.command()
def edit(
    image: ImageArg,
    instruction: Annotated[
        str | None, typer.Argument(help="What to change, e.g. 'Cartoonize the following image'.")
    ] = None,
    image_guidance: Annotated[
        float | None, typer.Option("--image-guidance", help="How closely to stick to the input picture.")
    ] = None,
    negative: NegativeOpt = None,
    model: ModelOpt = None,
    size: SizeOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    seed: SeedOpt = None,
    num_images: CountOpt = None,
    scheduler: SchedulerOpt = None,
    lora: LoraOpt = None,
    preset: PresetOpt = None,
    out: OutOpt = None,
) -> None:
    """Instruction edit with an InstructPix2Pix-class model (e.g. --preset cartoonize)."""
    from limner.cli.generation import request_fields, run_and_save

    def build(settings: Settings, console: Console) -> list[Path]:
        fields = request_fields(
            task="edit", prompt=instruction, negative=negative, model=model, size=size, steps=steps,
            guidance=guidance, seed=seed, num_images=num_images,
            scheduler=scheduler.value if scheduler else None, loras=lora, image_guidance_scale=image_guidance,
        )  # fmt: skip
        return run_and_save(settings, fields, preset, out, console, init_image=image)

    _generate(build)


class CharacterProvider(StrEnum):
    """Where ``limner character`` runs: the hosted models take one picture and their own styles."""

    LOCAL = "local"
    REPLICATE = "replicate"


@app.command()
def character(
    reference: Annotated[Path, typer.Argument(help="A picture of the character (PNG, JPEG or WebP).")],
    prompt: Annotated[str, typer.Argument(help="The scene, e.g. 'drinking beer in a bar'.")],
    style: StyleOpt = None,
    strength: Annotated[
        float | None, typer.Option("--strength", help="How strongly the reference binds (IP-Adapter scale).")
    ] = None,
    more: Annotated[list[Path] | None, typer.Option("--ref", help="More pictures of the same character.")] = None,
    ip_adapter: AdapterOpt = None,
    negative: NegativeOpt = None,
    model: ModelOpt = None,
    size: SizeOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    seed: SeedOpt = None,
    num_images: CountOpt = None,
    lora: LoraOpt = None,
    out: OutOpt = None,
    provider: Annotated[
        CharacterProvider,
        typer.Option(
            "--provider",
            help="local: IP-Adapter on a local model; replicate: the instantcharacter preset (REPLICATE_API_TOKEN).",
        ),
    ] = CharacterProvider.LOCAL,
) -> None:
    """The character in REFERENCE in a new scene (IP-Adapter, or Replicate's InstantCharacter), in a --style."""
    from limner.cli.generation import request_fields, run_and_save

    preset = None
    if provider is CharacterProvider.REPLICATE:
        preset = "instantcharacter"
        if model and not model.startswith("replicate:"):
            model = f"replicate:{model}"

    def build(settings: Settings, console: Console) -> list[Path]:
        fields = request_fields(
            task="character", prompt=prompt, negative=negative, model=model, size=size, steps=steps,
            guidance=guidance, seed=seed, num_images=num_images, scheduler=None, loras=lora, style=style,
            ip_adapter=ip_adapter, ip_adapter_scale=strength,
        )  # fmt: skip
        return run_and_save(settings, fields, preset, out, console, references=[reference, *(more or [])])

    _generate(build)


@app.command()
def styles() -> None:
    """List the style presets (built-in and from LIMNER_STYLES_FILE)."""
    from limner.styles import load_styles

    with user_errors():
        found = load_styles(_settings().styles_file)
    table = Table("name", "LoRA", "fits", "description")
    for item in found.values():
        table.add_row(item.name, item.lora or "", item.base or "any", item.description)
    Console().print(table)


@app.command()
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


def _record_rows(record: object) -> list[tuple[str, str]]:
    from limner.core.records import ImageRecord

    assert isinstance(record, ImageRecord)
    request = record.request
    rows = [
        ("task", request.task.value),
        ("prompt", request.prompt),
        ("negative prompt", request.negative_prompt),
        ("model", record.model_name),
        ("size", f"{record.width}x{record.height}"),
        ("seed", str(record.seed)),
        ("steps", str(request.steps)),
        ("guidance", f"{request.guidance_scale:g}"),
        ("scheduler", request.scheduler.value if request.scheduler else f"default ({record.scheduler})"),
    ]
    if request.task.value in ("img2img", "inpaint"):
        rows.append(("strength", f"{request.strength:g}"))
    if request.task.value == "edit":
        rows.append(("image guidance", f"{request.image_guidance_scale:g}"))
    if request.loras:
        rows.append(("loras", ", ".join(f"{lo.ref}:{lo.weight:g}" for lo in request.loras)))
    if request.preset:
        rows.append(("preset", request.preset))
    rows += [
        ("pipeline", record.pipeline),
        ("time", f"load {record.timings.load_s:.2f}s, inference {record.timings.inference_s:.2f}s"),
        ("limner", record.limner_version),
    ]
    return rows


@app.command("presets")
def presets_list() -> None:
    """List the presets (built-in and from LIMNER_PRESETS_FILE): a model plus defaults, for --preset."""
    from limner.presets import load_presets

    with user_errors():
        presets = load_presets(_settings().presets_file)
    table = Table("name", "task", "model", "description")
    for preset in presets.values():
        table.add_row(preset.name, preset.task.value if preset.task else "", preset.model or "", preset.description)
    Console().print(table)


@dev_app.command("tiny-model")
def tiny_model(
    folder: Annotated[Path, typer.Argument(help="Where to write the diffusers folder.")],
    kind: Annotated[str, typer.Option(help="txt2img, inpaint or edit (UNet input layout).")] = "txt2img",
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write a tiny random-weight SD-shaped model (a few MB) for tests and offline demos."""
    from limner.testing.tiny_models import TinyKind, build_tiny_pipeline

    with user_errors():
        try:
            tiny_kind = TinyKind(kind)
        except ValueError:
            raise InvalidRequestError("must be txt2img, inpaint or edit", param="kind") from None
        build_tiny_pipeline(folder, tiny_kind, seed=seed)
    typer.echo(str(folder))


def _mount_optional_apps() -> None:
    """Add sub-apps whose modules may be absent in a slim install (training)."""
    try:
        from limner.training.cli import train_app
    except ImportError:
        return
    from limner.cli.train import dreambooth

    train_app.command("dreambooth")(dreambooth)
    app.add_typer(train_app, name="train")


def main() -> None:
    """Console entry point."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    app()


def _mount_sub_apps() -> None:
    from limner.cli.batch import batch
    from limner.cli.characters import characters_app
    from limner.cli.models import models_app
    from limner.cli.prompts import prompts_app
    from limner.cli.service import gallery_app, serve, users_app, worker
    from limner.cli.ui import ui

    app.command("serve")(serve)
    app.command("worker")(worker)
    app.add_typer(users_app, name="users")
    app.add_typer(gallery_app, name="gallery")
    app.add_typer(prompts_app, name="prompts")
    app.command("batch")(batch)
    app.add_typer(characters_app, name="characters")
    app.add_typer(models_app, name="models")
    app.command("ui")(ui)


_mount_sub_apps()
_mount_optional_apps()
