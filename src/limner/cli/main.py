"""``limner``: the command line, assembled from one module per command group.

Every command module imports only typer, rich and ``cli.errors``/``cli.options`` at the top and the
code it runs (model code, the database, the server) inside its commands: building this app for
``limner --help`` loads no model library. Nothing is written to the environment at import time;
:func:`main` sets the libraries' quiet defaults before any command runs.
"""

from __future__ import annotations

import os

import typer

from limner.cli.batch import batch
from limner.cli.characters import characters_app
from limner.cli.dev import dev_app
from limner.cli.finishing import outpaint, upscale
from limner.cli.generating import character, edit, generate, img2img, inpaint
from limner.cli.info import info, presets, styles
from limner.cli.models import models_app
from limner.cli.prompts import prompts_app
from limner.cli.service import gallery_app, serve, users_app, worker
from limner.cli.train import train_app
from limner.cli.ui import ui

# Library chatter (download bars, optional-backend notices) is not for CLI users.
QUIET_LIBRARIES = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
                   "DIFFUSERS_VERBOSITY": "error"}  # fmt: skip


def build_app() -> typer.Typer:
    """The ``limner`` app: its commands in the order ``--help`` lists them, then its groups."""
    app = typer.Typer(
        rich_markup_mode=None,
        name="limner",
        help="Self-hosted image generation: text-to-image, img2img, inpaint and instruction edits.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for command in (generate, img2img, inpaint, outpaint, edit, character, upscale, styles, info, presets, serve,
                    worker, batch, ui):  # fmt: skip
        app.command()(command)
    groups = {"dev": dev_app, "users": users_app, "gallery": gallery_app, "prompts": prompts_app,
              "characters": characters_app, "models": models_app, "train": train_app}  # fmt: skip
    for name, group in groups.items():
        app.add_typer(group, name=name)
    return app


app = build_app()


def quiet_libraries() -> None:
    """Silence the model libraries' own output, unless the user set these variables.

    Called before any command runs: the libraries read the variables when they are imported.
    """
    for variable, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(variable, value)


def main() -> None:
    """Console entry point (``limner``)."""
    quiet_libraries()
    app()


if __name__ == "__main__":
    main()
