"""job counters

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 08:20:00

One row per final status (succeeded, failed, canceled) with how many started jobs ended so and their
summed run time, kept as jobs finish; seeded here from the jobs already finished.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_FINAL = ("succeeded", "failed", "canceled")


def upgrade() -> None:
    counters = op.create_table(
        "job_counters",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("finished", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("status", name=op.f("pk_job_counters")),
    )
    jobs = sa.table("jobs", sa.column("status", sa.String), sa.column("started_at", sa.DateTime),
                    sa.column("finished_at", sa.DateTime))  # fmt: skip
    totals = {status: [0, 0.0] for status in _FINAL}
    rows = op.get_bind().execute(
        sa.select(jobs.c.status, jobs.c.started_at, jobs.c.finished_at).where(
            jobs.c.started_at.is_not(None), jobs.c.finished_at.is_not(None)
        )
    )
    for status, started_at, finished_at in rows:
        if status in totals:
            totals[status][0] += 1
            try:
                totals[status][1] += max(0.0, (finished_at - started_at).total_seconds())
            except TypeError:  # a time the driver returned as text: counted, its duration unknown
                continue
    op.bulk_insert(counters, [{"status": s, "finished": n, "seconds": t} for s, (n, t) in totals.items()])


def downgrade() -> None:
    op.drop_table("job_counters")
