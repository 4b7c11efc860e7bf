"""``limner serve``, ``limner users ...`` and ``limner gallery import``: the service from the terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from limner.config import Settings
from limner.core.progress import CancelToken, ProgressCallback
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs

users_app = typer.Typer(help="Accounts of the service (stored in its database).", no_args_is_help=True)
gallery_app = typer.Typer(help="The service's gallery.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default LIMNER_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default LIMNER_PORT, 8000).")] = None,
) -> None:
    """Start the REST API with its in-process worker on the embedded defaults (SQLite, local files)."""
    import uvicorn

    from limner.api.app import create_app

    settings = Settings()
    app = create_app(settings)
    Console(stderr=True).print(
        f"limner API on http://{host or settings.host}:{port or settings.port}  (docs at /docs, data in "
        f"{settings.data_dir})"
    )
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level="info")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Argument(help="Login name of the new admin.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Create an admin account (the first one, or another)."""
    _create(username, _read_password(password_stdin), admin=True)


@users_app.command("create")
def create_user(
    username: Annotated[str, typer.Argument(help="Login name of the new user.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Create a user account."""
    _create(username, _read_password(password_stdin), admin=False)


def _create(username: str, password: str, admin: bool) -> None:
    from limner.cli.app import user_errors
    from limner.db.models import Role
    from limner.services.container import build_services

    with user_errors():
        services = build_services(Settings(), engine=_NoEngine())
        with services.sessions() as session:
            user = services.users.create(session, username, password, Role.ADMIN if admin else Role.USER)
        services.db.dispose()
    typer.echo(f"created {user.role} {user.username} ({user.id})")


@gallery_app.command("import")
def import_images(
    folder: Annotated[Path, typer.Argument(help="A folder of PNGs written by `limner generate` (or one PNG).")],
    user: Annotated[str, typer.Option("--user", help="Owner of the imported images.")],
) -> None:
    """Import CLI-generated PNGs (with their parameters) into a user's gallery."""
    from sqlalchemy import select

    from limner.cli.app import user_errors
    from limner.core.errors import InvalidRequestError, NotFoundError
    from limner.db.models import User
    from limner.services.container import build_services

    with user_errors():
        services = build_services(Settings(), engine=_NoEngine())
        files = sorted(folder.glob("*.png")) if folder.is_dir() else [folder]
        if not files or not files[0].is_file():
            raise InvalidRequestError(f"no PNG files at {folder}", param="folder")
        with services.sessions() as session:
            owner = session.scalar(select(User).where(User.username == user))
            if owner is None:
                raise NotFoundError(f"no user {user!r}", param="user")
            for path in files:
                image = services.gallery.import_png(session, owner, path)
                typer.echo(f"{path} -> {image.id}")
        services.db.dispose()


class _NoEngine:
    """Admin commands touch the database only; they never generate."""

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        raise RuntimeError("no engine in admin commands")

    def run(
        self, request: GenerationRequest, inputs: TaskInputs, progress: ProgressCallback, cancel: CancelToken
    ) -> GenerationResult:
        raise RuntimeError("no engine in admin commands")
