"""Engine settings: SQLite connections are not pinged on every checkout; server ones are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from limner.db.base import make_engine, make_session_factory


def test_sqlite_sessions_do_not_ping_their_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pings.db'}")
    pings: list[Any] = []
    do_ping = type(engine.dialect).do_ping

    def counted(dialect: Any, connection: Any) -> bool:
        pings.append(connection)
        return do_ping(dialect, connection)

    monkeypatch.setattr(type(engine.dialect), "do_ping", counted)
    sessions = make_session_factory(engine)
    for _ in range(3):
        with sessions() as session:
            assert session.scalar(sa.text("SELECT 1")) == 1
    engine.dispose()
    assert pings == []


def test_server_connections_are_still_pinged() -> None:
    engine = make_engine("postgresql+psycopg://user@127.0.0.1:1/none")  # not connected to
    assert engine.pool._pre_ping  # type: ignore[attr-defined]
