"""The finishing commands: ``upscale`` (an upscaler model over a picture) and ``outpaint`` (extend a picture).

Both end in the generation service like every generating command (task ``upscale`` / ``outpaint`` of
the one request type), so the API, the worker and batches run exactly the same code. Model code is
imported inside the commands, so ``limner --help`` loads none of it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from limner.cli.errors import user_errors
from limner.cli.generating import _generate
from limner.cli.options import GenerationOptions, ImageArg, OutOpt, PromptArg, SeedOpt, with_generation_options

PadOpt = Annotated[int, typer.Option(min=0, max=2048, help="Pixels to add on this side.")]


def upscale(
    image: ImageArg,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            metavar="REF",
            help="Upscaler: an ESRGAN-family .safetensors file (ESRGAN, Real-ESRGAN, SwinIR, HAT ...; local or "
            "owner/repo/file.safetensors), or an SD x4 upscaler (diffusers folder or hub id). No .pth/.ckpt.",
        ),
    ],
    scale: Annotated[
        float | None,
        typer.Option("--scale", help="How many times larger (default: the model's own scale); up to 8."),
    ] = None,
    tile: Annotated[
        int | None,
        typer.Option("--tile", metavar="PX", help="Tile size in input pixels (default 512; 0: whole picture at once)."),
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="What the picture shows (SD x4 upscaler only).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps (SD x4 upscaler only).")] = None,
    seed: SeedOpt = None,
    out: OutOpt = None,
) -> None:
    """Enlarge IMAGE with an upscaler model, tile by tile. Prints the path of the PNG written."""
    from limner.cli.generation import run_and_save
    from limner.config import Settings

    with user_errors():
        settings = Settings()
        fields = {"task": "upscale", "upscaler": model, "upscale_factor": scale, "tile_size": tile,
                  "prompt": prompt, "steps": steps, "seed": seed}  # fmt: skip
        given = {key: value for key, value in fields.items() if value is not None}
        paths = run_and_save(settings, given, None, out, Console(stderr=True), init_image=image)
    for path in paths:
        typer.echo(str(path))


@with_generation_options(leave_out=("size",))
def outpaint(
    image: ImageArg,
    prompt: PromptArg,
    left: PadOpt = 0,
    right: PadOpt = 0,
    top: PadOpt = 0,
    bottom: PadOpt = 0,
    strength: Annotated[
        float | None,
        typer.Option("--strength", help="How freely the new area is painted (default 0.75; 1 ignores the fill)."),
    ] = None,
    *,
    options: GenerationOptions,
) -> None:
    """Outpaint: extend IMAGE by --left/--right/--top/--bottom pixels, painting the new area after PROMPT.

    The original pixels are kept exactly; the canvas grows by up to 7 more pixels so its sides are multiples
    of 8. Best with an inpainting model (9-channel UNet); any SD model works.
    """
    pads = {"left": left, "right": right, "top": top, "bottom": bottom}
    if not any(pads.values()):
        with user_errors():
            from limner.core.errors import InvalidRequestError

            raise InvalidRequestError("give --left, --right, --top or --bottom (pixels to add)", param="outpaint")
    _generate("outpaint", prompt, options, init_image=image, strength=strength, outpaint=pads)


COMMANDS = (upscale, outpaint)
