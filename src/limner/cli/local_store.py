"""The CLI's view of the local limner store (the same database and files ``limner serve`` uses).

Why: saved characters, gallery imports and registered models made on the command line are the
same objects the service shows, owned by a local user (``LIMNER_CLI_USER``, created on first use).
Opening the store writes no server secrets.
"""

from __future__ import annotations

from limner.db.models import User
from limner.services.store import Store, local_store

__all__ = ["local_store", "local_user"]


def local_user(store: Store, username: str, create: bool = True) -> User:
    """The named user; the CLI's own user is created (with an unusable random password) on first use."""
    with store.sessions() as session:
        return store.users.local_user(session, username, create=create)
