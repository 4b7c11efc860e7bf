"""``limner character`` (one-off, from a picture) and ``limner characters ...`` (saved characters)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.errors import user_errors
from limner.core.errors import InvalidRequestError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from limner.db.models import User
    from limner.services.characters import Characters

characters_app = typer.Typer(
    rich_markup_mode=None,
    help="Saved characters: reference pictures usable by name (--character).",
    no_args_is_help=True,
)

PicturesArg = Annotated[list[Path], typer.Argument(help="Reference pictures (PNG, JPEG or WebP).")]


@contextmanager
def _saved_characters() -> Iterator[tuple[Characters, User, Session]]:
    """The local store's characters, the CLI's user (``LIMNER_CLI_USER``) and a session, inside ``user_errors``."""
    from limner.cli.local_store import local_store, local_user
    from limner.config import Settings

    settings = Settings()
    with user_errors(), local_store(settings) as services:
        owner = local_user(services, settings.cli_user)
        with services.sessions() as session:
            yield services.characters, owner, session


@characters_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Name to use with --character.")],
    pictures: PicturesArg,
    weight: Annotated[list[float] | None, typer.Option("--weight", help="One weight per picture (repeat).")] = None,
    description: Annotated[str, typer.Option(help="A note shown by `characters show`.")] = "",
) -> None:
    """Save a character from one or more reference pictures."""
    with user_errors():
        missing = [path for path in pictures if not path.is_file()]
        if missing:
            raise InvalidRequestError(f"no such file: {missing[0]}", param="pictures")
    data = [path.read_bytes() for path in pictures]
    with _saved_characters() as (characters, owner, session):
        character = characters.add(session, owner, name, data, weight or None, description)
    typer.echo(f"saved character {character.name} ({len(pictures)} pictures)")


@characters_app.command("list")
def list_characters() -> None:
    """List saved characters."""
    table = Table("name", "pictures", "cached adapters", "created")
    with _saved_characters() as (characters, owner, session):
        for item in characters.list_characters(session, owner):
            cached = characters.cached_adapters(session, item)
            table.add_row(
                item.name, str(len(item.reference_image_ids)), str(len(cached)), f"{item.created_at:%Y-%m-%d}"
            )
    Console().print(table)


@characters_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Character name.")]) -> None:
    """Show a saved character."""
    with _saved_characters() as (characters, owner, session):
        item = characters.get(session, owner, name)
        cached = characters.cached_adapters(session, item)
    typer.echo(f"name: {item.name}\ndescription: {item.description}\npictures: {len(item.reference_image_ids)}")
    typer.echo(f"weights: {', '.join(f'{w:g}' for w in item.reference_weights)}")
    typer.echo("cached embeddings: " + (", ".join(cached) or "none yet (made on first use)"))


@characters_app.command("rm")
def remove(name: Annotated[str, typer.Argument(help="Character name.")]) -> None:
    """Delete a saved character, its pictures and cached embeddings."""
    with _saved_characters() as (characters, owner, session):
        characters.delete(session, owner, name)
    typer.echo(f"deleted character {name}")
