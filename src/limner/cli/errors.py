"""Exit codes of every ``limner`` command and the one place that turns errors into them.

Why a module of its own: every command module needs these, and the module that assembles the app
imports every command module; keeping them here lets each command import them at the top, with no
import cycle through ``cli.main``.

Exit codes: 0 success, 1 a failure that is not the user's input (download, runtime), 2 bad input
(any option, file or model reference; nothing is written), 130 canceled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from limner.core.errors import (
    ConflictError,
    GenerationCanceledError,
    InvalidRequestError,
    LimnerError,
    NotFoundError,
)

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELED = 130


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn limner's errors into one readable line on stderr and the documented exit code."""
    # pydantic is imported here, when a command runs, so that ``--help`` does not pay for it.
    from pydantic import ValidationError

    console = Console(stderr=True)
    try:
        yield
    except (GenerationCanceledError, KeyboardInterrupt):
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
