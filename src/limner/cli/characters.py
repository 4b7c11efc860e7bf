"""``limner character`` (one-off, from a picture) and ``limner characters ...`` (saved characters)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.errors import user_errors

characters_app = typer.Typer(help="Saved characters: reference pictures usable by name (--character).",
                             no_args_is_help=True)  # fmt: skip

PicturesArg = Annotated[list[Path], typer.Argument(help="Reference pictures (PNG, JPEG or WebP).")]


@characters_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Name to use with --character.")],
    pictures: PicturesArg,
    weight: Annotated[list[float] | None, typer.Option("--weight", help="One weight per picture (repeat).")] = None,
    description: Annotated[str, typer.Option(help="A note shown by `characters show`.")] = "",
) -> None:
    """Save a character from one or more reference pictures."""
    from limner.cli.local_store import local_store, local_user
    from limner.config import Settings
    from limner.core.errors import InvalidRequestError

    settings = Settings()
    with user_errors():
        data = []
        for path in pictures:
            if not path.is_file():
                raise InvalidRequestError(f"no such file: {path}", param="pictures")
            data.append(path.read_bytes())
        with local_store(settings) as services:
            owner = local_user(services, settings.cli_user)
            with services.sessions() as session:
                character = services.characters.add(session, owner, name, data, weight or None, description)
    typer.echo(f"saved character {character.name} ({len(pictures)} pictures)")


@characters_app.command("list")
def list_characters() -> None:
    """List saved characters."""
    from limner.cli.local_store import local_store, local_user
    from limner.config import Settings

    settings = Settings()
    table = Table("name", "pictures", "cached adapters", "created")
    with user_errors(), local_store(settings) as services:
        owner = local_user(services, settings.cli_user)
        with services.sessions() as session:
            for item in services.characters.list_characters(session, owner):
                cached = services.characters.cached_adapters(session, item)
                table.add_row(
                    item.name, str(len(item.reference_image_ids)), str(len(cached)), f"{item.created_at:%Y-%m-%d}"
                )
    Console().print(table)


@characters_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Character name.")]) -> None:
    """Show a saved character."""
    from limner.cli.local_store import local_store, local_user
    from limner.config import Settings

    settings = Settings()
    with user_errors(), local_store(settings) as services:
        owner = local_user(services, settings.cli_user)
        with services.sessions() as session:
            item = services.characters.get(session, owner, name)
            cached = services.characters.cached_adapters(session, item)
    typer.echo(f"name: {item.name}\ndescription: {item.description}\npictures: {len(item.reference_image_ids)}")
    typer.echo(f"weights: {', '.join(f'{w:g}' for w in item.reference_weights)}")
    typer.echo("cached embeddings: " + (", ".join(cached) or "none yet (made on first use)"))


@characters_app.command("rm")
def remove(name: Annotated[str, typer.Argument(help="Character name.")]) -> None:
    """Delete a saved character, its pictures and cached embeddings."""
    from limner.cli.local_store import local_store, local_user
    from limner.config import Settings

    settings = Settings()
    with user_errors(), local_store(settings) as services:
        owner = local_user(services, settings.cli_user)
        with services.sessions() as session:
            services.characters.delete(session, owner, name)
    typer.echo(f"deleted character {name}")
