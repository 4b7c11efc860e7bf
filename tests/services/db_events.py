"""Recording what the database engine behind a sessionmaker does while a block runs (commits,
statements), for the tests that count a job's database work."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker


@contextmanager
def engine_events(sessions: sessionmaker[Session], event: str, entry: Callable[..., str]) -> Iterator[list[str]]:
    """``entry(*event arguments)`` for every ``event`` (a SQLAlchemy engine event) while the block runs."""
    seen: list[str] = []
    engine = sessions.kw["bind"]

    def record(*arguments: object) -> None:
        seen.append(entry(*arguments))

    sa.event.listen(engine, event, record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, event, record)


def sql_statements(sessions: sessionmaker[Session]) -> AbstractContextManager[list[str]]:
    """The text of every SQL statement run while the block runs."""
    return engine_events(sessions, "before_cursor_execute", lambda _connection, _cursor, statement, *_: statement)
