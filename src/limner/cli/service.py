"""``limner serve``, ``limner users ...`` and ``limner gallery import``: the service from the terminal."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

from limner.cli.errors import user_errors

users_app = typer.Typer(
    rich_markup_mode=None, help="Accounts of the service (stored in its database).", no_args_is_help=True
)
gallery_app = typer.Typer(rich_markup_mode=None, help="The service's gallery.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default LIMNER_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default LIMNER_PORT, 8000).")] = None,
    ui: Annotated[bool, typer.Option("--ui", help="Also start the web studio (Streamlit).")] = False,
    ui_port: Annotated[int, typer.Option(help="Port of the web studio.")] = 8501,
) -> None:
    """Start the REST API with its in-process worker on the embedded defaults (SQLite, local files)."""
    import uvicorn

    from limner.api.app import create_app
    from limner.config import Settings

    settings = Settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    app = create_app(settings)
    console = Console(stderr=True)
    console.print(f"limner API on http://{bind_host}:{bind_port}  (docs at /docs, data in {settings.data_dir})")
    studio = None
    if ui:
        from limner.cli.ui import start_ui_subprocess

        client_host = "127.0.0.1" if bind_host in ("0.0.0.0", "::") else bind_host
        studio = start_ui_subprocess(f"http://{client_host}:{bind_port}", port=ui_port, **_child_dies_with_parent())
        # uvicorn handles SIGTERM, then raises it again once it has stopped; with the default action
        # that kills this process before the `finally` below. Exiting by SystemExit runs it.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        console.print(f"limner studio on http://{client_host}:{ui_port}")
    try:
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="info")
    finally:
        if studio is not None:
            _stop_child(studio)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_CHILD_STOP_SECONDS = 10


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _child_dies_with_parent() -> dict[str, Any]:
    """Popen options that make the kernel send the child SIGTERM when this process dies (Linux).

    The belt to the `finally` braces: it also covers SIGKILL and crashes, where no Python code
    runs. ``prctl`` is looked up before the fork; after it the child only calls it.
    """
    if not sys.platform.startswith("linux"):
        return {}
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return {"preexec_fn": set_death_signal}


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(_CHILD_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def worker(
    threads: Annotated[int | None, typer.Option(help="Jobs run at once (default LIMNER_WORKERS, at least 1).")] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            help="With a broker: comma-separated Celery queues to take jobs from "
            "(default limner.generate,limner.train)."
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="With a broker: Celery worker concurrency (default 1; one process per GPU).")
    ] = None,
    pool: Annotated[str, typer.Option(help="With a broker: Celery pool (solo: jobs run in this process).")] = "solo",
) -> None:
    """Run jobs from the service's queue in this process: a GPU box beside a `limner serve` elsewhere.

    Point LIMNER_DATABASE_URL and LIMNER_FILES_URL at the same database and file store as the API
    (PostgreSQL and an fsspec store across machines); run the API with LIMNER_EXTERNAL_WORKERS=true.
    With LIMNER_BROKER_URL set (redis:// or amqp://) this is a Celery worker that takes job ids from
    the broker; otherwise it polls the database. SIGTERM or Ctrl-C hands any running job back to the
    queue for another worker.
    """
    import signal
    import threading

    from sqlalchemy import make_url

    from limner.config import Settings
    from limner.services.container import build_services

    settings = Settings()
    settings = settings.model_copy(update={"workers": threads if threads is not None else max(settings.workers, 1)})
    console = Console(stderr=True)
    with user_errors():
        services = build_services(settings)
    services.start_worker()
    database = make_url(settings.resolved_database_url()).render_as_string(hide_password=True)
    if settings.broker_url:
        from urllib.parse import urlsplit

        from limner.services.jobs.celery_app import KINDS, create_celery_app, queue_name, run_worker

        broker = urlsplit(settings.broker_url)  # no credentials on the screen
        console.print(f"limner worker {services.worker.id}: Celery on {broker.scheme}://{broker.hostname}:"
                      f"{broker.port or ''}, database {database}")  # fmt: skip
        try:
            run_worker(
                create_celery_app(settings, services.worker.run_job),
                name=services.worker.id,
                queues=queues.split(",") if queues else [queue_name(kind) for kind in KINDS],
                concurrency=concurrency or 1,
                pool=pool,
                on_shutdown=services.worker.stop,
            )
        finally:
            services.stop()
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    console.print(f"limner worker {services.worker.id}: {settings.workers} thread(s) on {database}")
    try:
        stop.wait()
    finally:
        console.print("stopping: running jobs go back to the queue")
        services.stop()


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
    from limner.cli.local_store import local_store
    from limner.config import Settings
    from limner.db.models import Role

    with user_errors(), local_store(Settings()) as services, services.sessions() as session:
        user = services.users.create(session, username, password, Role.ADMIN if admin else Role.USER)
    typer.echo(f"created {user.role} {user.username} ({user.id})")


@gallery_app.command("import")
def import_images(
    folder: Annotated[Path, typer.Argument(help="A folder of PNGs written by `limner generate` (or one PNG).")],
    user: Annotated[str | None, typer.Option("--user", help="Owner (default: LIMNER_CLI_USER).")] = None,
) -> None:
    """Import CLI-generated PNGs (with their parameters) into a user's gallery."""
    from limner.cli.local_store import local_store, local_user
    from limner.config import Settings
    from limner.core.errors import InvalidRequestError

    settings = Settings()
    with user_errors(), local_store(settings) as services:
        files = sorted(folder.glob("*.png")) if folder.is_dir() else [folder]
        if not files or not files[0].is_file():
            raise InvalidRequestError(f"no PNG files at {folder}", param="folder")
        owner = local_user(services, user or settings.cli_user, create=user is None)
        with services.sessions() as session:
            for path in files:
                image = services.gallery.import_png(session, owner, path)
                typer.echo(f"{path} -> {image.id}")
