"""``limner dev ...``: developer tools (tiny random-weight models for tests and offline demos)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from limner.cli.errors import user_errors
from limner.core.errors import InvalidRequestError

dev_app = typer.Typer(rich_markup_mode=None, help="Developer tools (tiny test models).", no_args_is_help=True)


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
