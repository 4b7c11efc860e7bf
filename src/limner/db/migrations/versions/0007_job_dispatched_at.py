"""job dispatched_at

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 07:50:00

When a queued job's message was last handed to the broker (Celery). A queued job whose message
is older than ``LIMNER_JOB_REDISPATCH_SECONDS`` (or was never sent: the broker was down) is sent
again by the workers' sweeper, so a broker that lost its messages loses no job; a duplicate
message is a no-op because workers claim rows by id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dispatched_at")
