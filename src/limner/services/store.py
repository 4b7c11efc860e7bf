"""The stored state of one limner installation: database, files, gallery, models, characters, users.

Why apart from the server's container: CLI commands (``limner generate --character``, ``limner
models``, ``limner characters``) need the same store the server uses, but nothing of the server:
no signing secret written to disk, no queue, no worker, no engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.orm import Session, sessionmaker

from limner.config import Settings
from limner.db.base import make_engine, make_session_factory
from limner.db.migrate import upgrade_to_head
from limner.services.auth.passwords import Passwords
from limner.services.characters import Characters
from limner.services.files import FileStore
from limner.services.gallery import Gallery
from limner.services.generation import ModelLookup, RegisteredName, registered_aliases
from limner.services.model_files import ModelFiles
from limner.services.models import ModelRegistry, registry_lookup
from limner.services.users import Users


@dataclass
class Store:
    """Database and files, with the services that read and write them."""

    settings: Settings
    db: DbEngine
    sessions: sessionmaker[Session]
    files: FileStore
    gallery: Gallery
    models: ModelRegistry
    characters: Characters
    users: Users

    @property
    def trainings_dir(self) -> Path:
        return Path(self.settings.data_dir) / "trainings"

    def model_lookup(self) -> ModelLookup:
        return registry_lookup(self.models, self.sessions)

    def engine_aliases(self) -> Callable[[str], str | None]:
        """Registered name -> weights this machine can load (unpacked from the file store when trained elsewhere)."""
        files = self.models.files
        return registered_aliases(self.model_lookup(), files.local_reference if files is not None else None)

    def close(self) -> None:
        self.db.dispose()


def open_store(settings: Settings) -> Store:
    """Open (creating and migrating where needed) the database and file store named by ``settings``."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    db = make_engine(settings.resolved_database_url())
    upgrade_to_head(db)
    files = FileStore(settings.resolved_files_url())
    models_dir = Path(settings.data_dir) / "models"
    gallery = Gallery(files, max_upload_bytes=settings.max_input_image_bytes, max_pixels=settings.max_pixels,
                      png_compress_level=settings.png_compress_level)  # fmt: skip
    return Store(
        settings=settings,
        db=db,
        sessions=make_session_factory(db),
        files=files,
        gallery=gallery,
        models=ModelRegistry(models_dir, ModelFiles(files, models_dir)),
        characters=Characters(gallery, files),
        users=Users(Passwords()),
    )


@contextmanager
def local_store(settings: Settings) -> Iterator[Store]:
    """The store for one CLI command, closed afterwards."""
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def local_model_lookup(settings: Settings) -> ModelLookup:
    """Registered names of the local store, each looked up once when first asked; none while no store exists."""
    found: dict[str, RegisteredName | None] = {}

    def lookup(name: str) -> RegisteredName | None:
        if name not in found:
            if not settings.has_store():
                return None
            with local_store(settings) as store:
                found[name] = store.model_lookup()(name)
        return found[name]

    return lookup
