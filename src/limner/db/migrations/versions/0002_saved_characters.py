"""saved characters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:29:06.204899
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "characters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reference_image_ids", sa.JSON(), nullable=False),
        sa.Column("reference_weights", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_characters_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_characters")),
        sa.UniqueConstraint("owner_id", "name", name="uq_characters_owner_name"),
    )
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_characters_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "character_embeddings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("character_id", sa.String(length=32), nullable=False),
        sa.Column("adapter_key", sa.String(length=1024), nullable=False),
        sa.Column("file_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["character_id"],
            ["characters.id"],
            name=op.f("fk_character_embeddings_character_id_characters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_character_embeddings")),
        sa.UniqueConstraint("character_id", "adapter_key", name="uq_character_embeddings_adapter"),
    )
    with op.batch_alter_table("character_embeddings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_character_embeddings_character_id"), ["character_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("character_embeddings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_character_embeddings_character_id"))

    op.drop_table("character_embeddings")
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_characters_owner_id"))

    op.drop_table("characters")
