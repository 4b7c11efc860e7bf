"""The gallery's writes for a job's images: one statement for a new image, one row however often it is saved."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from limner.db.models import Image
from limner.services.files import FileStore
from limner.services.gallery import Gallery
from tests.services.db_events import engine_events
from tests.services.test_job_after_work import generated
from tests.services.test_queue import enqueue, make_queue, make_user


def statements(sessions: sessionmaker[Session]) -> AbstractContextManager[list[str]]:
    """The verb of every SQL statement run while the block runs."""
    return engine_events(sessions, "before_cursor_execute", lambda _conn, _cursor, sql, *_: sql.split()[0].upper())


def test_a_jobs_new_image_is_one_insert_and_a_redelivery_reuses_it(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    gallery = Gallery(FileStore(str(tmp_path / "files")), max_upload_bytes=10_000_000, max_pixels=10_000_000)
    user = make_user(sessions)
    job = enqueue(make_queue(sessions), sessions, user)
    with statements(sessions) as made, sessions() as session:
        first = gallery.save_output(session, user.id, job.id, generated(), later=lambda task: None)
    assert made == ["INSERT"]
    with sessions() as session:
        again = gallery.save_output(session, user.id, job.id, generated(), later=lambda task: None)
        rows = session.scalars(sa.select(Image).where(Image.job_id == job.id)).all()
    assert again.id == first.id
    assert [row.id for row in rows] == [first.id]
    assert sorted(path.name for path in (tmp_path / "files" / "images").iterdir()) == [f"{first.id}.png"]
