"""``limner models ...``: the model registry of the local store (the one ``limner serve`` uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.errors import user_errors

models_app = typer.Typer(
    rich_markup_mode=None,
    help="Registered models: friendly names usable with --model and --lora.",
    no_args_is_help=True,
)


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size else ""


@models_app.command("list")
def list_models() -> None:
    """List registered models."""
    from limner.cli.local_store import local_store
    from limner.config import Settings

    table = Table("name", "kind", "architecture", "base", "size", "reference")
    with user_errors(), local_store(Settings()) as services, services.sessions() as session:
        for model in services.models.list_models(session):
            table.add_row(model.name, model.kind, model.architecture, model.base_model or "", _size(model.size_bytes),
                          model.reference)  # fmt: skip
    Console().print(table)


@models_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Registered name.")]) -> None:
    """Show one registered model."""
    from limner.cli.local_store import local_store
    from limner.config import Settings

    with user_errors(), local_store(Settings()) as services, services.sessions() as session:
        model = services.models.get(session, name)
        rows = [("name", model.name), ("kind", model.kind), ("architecture", model.architecture),
                ("base model", model.base_model or ""), ("reference", model.reference),
                ("size", _size(model.size_bytes)), ("registered", f"{model.created_at:%Y-%m-%d %H:%M}"),
                *((key, str(value)) for key, value in model.details.items())]  # fmt: skip
    for key, value in rows:
        typer.echo(f"{key}: {value}")


@models_app.command("install")
def install(
    hub_id: Annotated[str, typer.Argument(help="A Hugging Face hub id, e.g. stabilityai/sd-turbo.")],
    name: Annotated[str | None, typer.Option("--name", help="Registered name (default: the repo name).")] = None,
) -> None:
    """Download a model (safetensors and configs only) into the Hugging Face cache and register it."""
    from limner.cli.local_store import local_store
    from limner.config import Settings

    with user_errors(), local_store(Settings()) as services, services.sessions() as session:
        model = services.models.install(session, hub_id, name)
    typer.echo(f"installed {model.name} ({model.kind}, {model.architecture})")


@models_app.command("import")
def import_model(
    path: Annotated[Path, typer.Argument(help="A diffusers folder, or a .safetensors checkpoint or LoRA.")],
    name: Annotated[str, typer.Option("--name", help="Registered name.")],
    base: Annotated[str | None, typer.Option("--base", help="For a LoRA: the model it was trained on.")] = None,
) -> None:
    """Check (safetensors only, headers validated) and copy weights into the registry."""
    from limner.cli.local_store import local_store
    from limner.config import Settings

    with user_errors(), local_store(Settings()) as services, services.sessions() as session:
        model = services.models.import_path(session, path, name, base_model=base)
    typer.echo(f"imported {model.name} ({model.kind}, {model.architecture})")


@models_app.command("rm")
def remove(name: Annotated[str, typer.Argument(help="Registered name.")]) -> None:
    """Unregister a model (and delete its copied files; the hub cache is left alone)."""
    from limner.cli.local_store import local_store
    from limner.config import Settings

    with user_errors(), local_store(Settings()) as services, services.sessions() as session:
        services.models.remove(session, name)
    typer.echo(f"removed {name}")
