"""model visibility

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 07:30:00

A registered model is private to its owner (``created_by``) or shared with every user. Models
registered before this revision were installed or imported by admins, or trained; the trained
ones (their details hold the training's ``instance_prompt``) become private to the user who trained them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("visibility", sa.String(length=16), nullable=False, server_default="shared"))
    models = sa.table("models", sa.column("id", sa.String), sa.column("created_by", sa.String),
                      sa.column("details", sa.JSON), sa.column("visibility", sa.String))  # fmt: skip
    connection = op.get_bind()
    for model_id, owner, details in connection.execute(sa.select(models.c.id, models.c.created_by, models.c.details)):
        if owner is not None and "instance_prompt" in (details or {}):
            connection.execute(models.update().where(models.c.id == model_id).values(visibility="private"))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("visibility")
