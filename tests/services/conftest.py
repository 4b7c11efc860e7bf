"""Databases for service tests: a SQLite file, and a fresh schema in the local PostgreSQL.

PostgreSQL tests skip with the reason when the server is absent, and fail under ``CI=true``,
where it must run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from limner.db.base import make_engine, make_session_factory
from limner.db.migrate import upgrade_to_head

POSTGRES_URL = os.environ.get("LIMNER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
    except Exception:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated database: a SQLite file, or a fresh schema in the local PostgreSQL."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}")
        upgrade_to_head(engine)
        yield make_session_factory(engine)
        engine.dispose()
        return
    require("PostgreSQL", _postgres_available(), POSTGRES_URL)
    schema = f"limner_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade_to_head(engine)
        yield make_session_factory(engine)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def require(service: str, reachable: bool, where: str) -> None:
    """Skip (locally) or fail (under ``CI=true``) a test whose loopback service is not running."""
    if reachable:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {service} is not reachable at {where}")
    pytest.skip(f"{service} not reachable at {where}")
