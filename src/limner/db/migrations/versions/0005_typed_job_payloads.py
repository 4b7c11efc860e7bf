"""typed job payloads

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 07:00:00

Each job row gets one ``payload`` column holding a typed payload (``limner.core.jobs``), in place
of ``request`` (a generation request, with a training spec merged into it for trainings) and
``input_image_ids`` (gallery ids beside it). Existing rows are rewritten; an index serves the
per-owner, per-kind listing (``GET /v1/trainings``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TRAINING_KEY = "training"
_GALLERY_PREFIX = "image:"


def _payload(kind: str, request: dict[str, Any], image_ids: dict[str, str]) -> dict[str, Any]:
    request = dict(request)
    training = request.pop(_TRAINING_KEY, None)
    for field in ("init_image", "mask_image"):
        if image_ids.get(field):
            request[field] = {"image_id": image_ids[field]}
    references = [image_ids[key] for key in sorted(image_ids) if key.startswith("reference_")]
    if references:
        request["reference_images"] = [{"image_id": image_id} for image_id in references]
    if kind == "train" and training is not None:
        return {"kind": "train", "request": request, "training": training}
    return {"kind": "generate", "request": request}


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("kind", sa.String),
        sa.column("request", sa.JSON),
        sa.column("input_image_ids", sa.JSON),
        sa.column("payload", sa.JSON),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(jobs.c.id, jobs.c.kind, jobs.c.request, jobs.c.input_image_ids)).all()
    for job_id, kind, request, image_ids in rows:
        payload = _payload(kind, request or {}, image_ids or {})
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(payload=payload))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("payload", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("request")
        batch.drop_column("input_image_ids")
        batch.create_index("ix_jobs_owner_kind_created", ["owner_id", "kind", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_owner_kind_created")
        batch.add_column(sa.Column("request", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("input_image_ids", sa.JSON(), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("request", sa.JSON),
        sa.column("input_image_ids", sa.JSON),
        sa.column("payload", sa.JSON),
    )
    connection = op.get_bind()
    for job_id, payload in connection.execute(sa.select(jobs.c.id, jobs.c.payload)).all():
        request = dict(payload.get("request") or {})
        image_ids: dict[str, str] = {}
        for field in ("init_image", "mask_image"):
            ref = request.get(field)
            if isinstance(ref, dict) and ref.get("image_id"):
                image_ids[field] = ref["image_id"]
                request[field] = _GALLERY_PREFIX + ref["image_id"]
        references = [ref for ref in request.get("reference_images", []) if isinstance(ref, dict)]
        for index, ref in enumerate(references):
            image_ids[f"reference_{index}"] = ref.get("image_id", "")
        if references:
            request["reference_images"] = [_GALLERY_PREFIX + ref.get("image_id", "") for ref in references]
        if payload.get("training") is not None:
            request[_TRAINING_KEY] = payload["training"]
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(request=request, input_image_ids=image_ids))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("request", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("input_image_ids", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("payload")
