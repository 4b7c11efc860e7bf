"""The CLI's view of the local limner store (the same database and files ``limner serve`` uses).

Why: saved characters (and gallery imports) made on the command line are the same objects the
service shows, owned by a local user (``LIMNER_CLI_USER``, created on first use).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from limner.config import Settings
from limner.core.errors import NotFoundError
from limner.core.progress import CancelToken, ProgressCallback
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest
from limner.db.models import Role, User
from limner.engines.base import TaskInputs
from limner.engines.local.model_refs import BUILTIN_MODELS
from limner.services.characters import CharacterInputs
from limner.services.container import Services, build_services
from limner.services.models import MODEL_NAME


class NoEngine:
    """Store commands touch the database and files only; they never generate."""

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        raise RuntimeError("no engine in store commands")

    def run(
        self, request: GenerationRequest, inputs: TaskInputs, progress: ProgressCallback, cancel: CancelToken
    ) -> GenerationResult:
        raise RuntimeError("no engine in store commands")


@contextmanager
def local_store(settings: Settings) -> Iterator[Services]:
    services = build_services(settings, engine=NoEngine())
    try:
        yield services
    finally:
        services.db.dispose()


def local_user(services: Services, username: str, create: bool = True) -> User:
    """The named user; the CLI's own user is created (with an unusable random password) on first use."""
    with services.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is not None:
            return user
    if not create:
        raise NotFoundError(f"no user {username!r}", param="user")
    with services.sessions() as session:
        return services.users.create(session, username, secrets.token_urlsafe(32), Role.USER)


def local_character_inputs(settings: Settings, name: str) -> CharacterInputs:
    with local_store(settings) as services:
        owner = local_user(services, settings.cli_user)
        with services.sessions() as session:
            return services.characters.inputs(session, owner, name)


def remember_local_character(settings: Settings, name: str, computed: dict[str, Any]) -> None:
    with local_store(settings) as services:
        owner = local_user(services, settings.cli_user)
        with services.sessions() as session:
            services.characters.remember(session, owner, name, computed)


def local_model_aliases(settings: Settings) -> Callable[[str], str | None]:
    """Registered model names of the local store, looked up only for names that need it."""

    def resolve(name: str) -> str | None:
        if "/" in name or not MODEL_NAME.match(name) or name in BUILTIN_MODELS or Path(name).exists():
            return None
        if not Path(settings.data_dir).exists():
            return None
        with local_store(settings) as services, services.sessions() as session:
            model = services.models.find(session, name)
            return model.reference if model is not None else None

    return resolve
