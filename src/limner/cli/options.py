"""Typer options shared by the generating commands, each written once.

Why: ``generate``, ``img2img``, ``inpaint``, ``edit`` and ``character`` take the same dozen options
(model, size, steps, seed ...). They are declared here once as ``Annotated`` aliases and gathered in
:class:`GenerationOptions`; :func:`with_generation_options` adds them to a command's own parameters,
so a command lists only what is particular to it and receives the rest as one object.

Only typer is imported here: ``limner --help`` builds every command's options, and must load neither
model code nor pydantic to do so. That is why ``--scheduler`` is a plain string checked by
:func:`scheduler_name` against :class:`~limner.core.requests.SchedulerName` when it is given.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer

SCHEDULER_NAMES = "euler, euler_a, dpm++_2m, dpm++_2m_karras, ddim, lcm, unipc, heun, pndm"


def scheduler_name(value: str) -> str:
    """Accept a sampler name of :class:`~limner.core.requests.SchedulerName` (read when one is given)."""
    from limner.core.requests import SchedulerName

    names = [item.value for item in SchedulerName]
    if value not in names:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(names)}")
    return value


def decode_mode(value: str) -> str:
    """``full`` or ``fast`` (see :class:`~limner.core.requests.DecodeMode`)."""
    if value not in ("full", "fast"):
        raise typer.BadParameter(f"{value!r} is not full or fast")
    return value


PromptArg = Annotated[
    str,
    typer.Argument(help="What to draw. (word:1.3) or (word) weights a word up, [word] down; {a|b} picks one "
                   "option, __colors__ a line of a wildcard file."),
]  # fmt: skip
ImageArg = Annotated[Path, typer.Argument(help="Input picture (PNG, JPEG or WebP).")]
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
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", metavar="NAME", parser=scheduler_name, help=f"Sampler: {SCHEDULER_NAMES}."),
]
LoraOpt = Annotated[
    list[str] | None,
    typer.Option("--lora", help="LoRA as REF or REF:WEIGHT (.safetensors only); repeatable."),
]
EmbeddingOpt = Annotated[
    list[str] | None,
    typer.Option("--embedding", help="Textual-inversion embedding (.safetensors file, folder or hub id); its word "
                 "(the file's name, e.g. easynegative) then works in the prompts. Repeatable."),
]  # fmt: skip
CombinatorialOpt = Annotated[
    bool,
    typer.Option("--combinatorial", help="With {a|b} or __wildcards__ in the prompt: one image per combination "
                 "(times --num-images) instead of random picks."),
]  # fmt: skip
PresetOpt = Annotated[str | None, typer.Option("--preset", "-p", help="Apply a preset (see `limner presets`).")]
DecodeOpt = Annotated[
    str | None,
    typer.Option("--decode", metavar="full|fast", parser=decode_mode,
                 help="fast: decode with a tiny autoencoder (TAESD family), quicker and a little softer."),
]  # fmt: skip
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: LIMNER_OUTPUT_DIR).")]
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
HiresOpt = Annotated[
    float | None,
    typer.Option("--hires", metavar="SCALE",
                 help="Hires fix: generate at --size, enlarge SCALE times (1-4], refine with img2img at that size."),
]  # fmt: skip
HiresStrengthOpt = Annotated[
    float | None,
    typer.Option("--hires-strength", help="Denoise of the hires refining pass (default 0.5; ~0.3 after a model)."),
]  # fmt: skip
HiresUpscalerOpt = Annotated[
    str | None,
    typer.Option("--hires-upscaler", metavar="latent|lanczos|REF",
                 help="How the hires fix enlarges: latent (default), lanczos, or an upscaler model (.safetensors "
                 "ESRGAN-family file, or an SD x4 upscaler folder / hub id)."),
]  # fmt: skip
HiresStepsOpt = Annotated[
    int | None, typer.Option("--hires-steps", help="Steps of the refining pass (default: --steps).")
]


ControlOpt = Annotated[
    list[str] | None,
    typer.Option("--control", metavar="IMAGE[:TYPE][:WEIGHT]",
                 help="A control picture guiding the composition (ControlNet / T2I-Adapter); TYPE: canny (default), "
                 "scribble, lineart, none (already a control image), depth (needs LIMNER_DEPTH_MODEL), pose (pass "
                 "a ready skeleton with :none); WEIGHT: its strength (default 1). Repeatable."),
]  # fmt: skip
ControlModelOpt = Annotated[
    list[str] | None,
    typer.Option("--control-model", metavar="REF",
                 help="ControlNet or T2I-Adapter of each --control, in order (given once: for all): hub id, "
                 "diffusers folder, .safetensors file, or limner-tiny-control (canny, for limner-tiny). Repeatable."),
]  # fmt: skip
ControlStartOpt = Annotated[
    float | None, typer.Option("--control-start", help="Fraction of the steps at which the controls start (0-1).")
]
ControlEndOpt = Annotated[
    float | None, typer.Option("--control-end", help="Fraction of the steps at which the controls stop (0-1).")
]
GuessModeOpt = Annotated[
    bool, typer.Option("--guess-mode", help="ControlNets follow the control picture even with little or no prompt.")
]
SaveControlOpt = Annotated[
    bool, typer.Option("--save-control", help="Also write each preprocessed control picture beside the outputs.")
]


@dataclass(frozen=True)
class GenerationOptions:
    """The options every generating command takes; None means: the preset's value, else the model's."""

    negative: NegativeOpt = None
    model: ModelOpt = None
    size: SizeOpt = None
    steps: StepsOpt = None
    guidance: GuidanceOpt = None
    seed: SeedOpt = None
    num_images: CountOpt = None
    scheduler: SchedulerOpt = None
    lora: LoraOpt = None
    embedding: EmbeddingOpt = None
    combinatorial: CombinatorialOpt = False
    preset: PresetOpt = None
    decode: DecodeOpt = None
    out: OutOpt = None


def with_generation_options(*, leave_out: tuple[str, ...] = ()) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the :class:`GenerationOptions` (less ``leave_out``) as Typer options.

    The decorated command declares its own parameters and a last one, ``options``; the Typer
    command it returns takes the own parameters followed by the shared options, and calls the
    command with the shared ones gathered into one :class:`GenerationOptions`.
    """
    hints = get_type_hints(GenerationOptions, include_extras=True)
    shared = [
        inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=item.default, annotation=hints[item.name])
        for item in dataclasses.fields(GenerationOptions)
        if item.name not in leave_out
    ]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        *own, last = signature.parameters.values()
        if last.name != "options":
            raise TypeError(f"{command.__name__} must take `options: GenerationOptions` last")

        @functools.wraps(command)
        def typer_command(**values: Any) -> None:
            chosen = {parameter.name: values.pop(parameter.name) for parameter in shared}
            command(**values, options=GenerationOptions(**chosen))

        parameters = [*own, *shared]
        typer_command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        typer_command.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return typer_command

    return decorate


@dataclass(frozen=True)
class ControlOptions:
    """The control options of ``generate``, ``img2img`` and ``inpaint`` (see :mod:`limner.cli.control`)."""

    control: ControlOpt = None
    control_model: ControlModelOpt = None
    control_start: ControlStartOpt = None
    control_end: ControlEndOpt = None
    guess_mode: GuessModeOpt = False
    save_control: SaveControlOpt = False


def with_control_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the :class:`ControlOptions` as Typer options, gathered into its ``controls`` parameter.

    Apply it below :func:`with_generation_options`: the command keeps ``options`` last, and takes
    ``controls: ControlOptions`` as a keyword parameter.
    """
    hints = get_type_hints(ControlOptions, include_extras=True)
    fields = [
        inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=item.default, annotation=hints[item.name])
        for item in dataclasses.fields(ControlOptions)
    ]
    signature = inspect.signature(command, eval_str=True)
    *own, last = [parameter for parameter in signature.parameters.values() if parameter.name != "controls"]

    @functools.wraps(command)
    def with_controls(**values: Any) -> None:
        chosen = {parameter.name: values.pop(parameter.name) for parameter in fields}
        command(**values, controls=ControlOptions(**chosen))

    parameters = [*own, *fields, last]
    with_controls.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_controls.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return with_controls
