"""Webhooks: a job's callback_url, when its delivery is due, and every delivery attempt

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import webapp.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("callback_url", sa.String(2048), nullable=True))
        batch_op.add_column(sa.Column("webhook_attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("webhook_due_at", webapp.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(op.f("ix_jobs_webhook_due_at"), ["webhook_due_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("attempted_at", webapp.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_webhook_deliveries_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("job_id", "attempt", name=op.f("uq_webhook_deliveries_job_id_attempt")),
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index(op.f("ix_jobs_webhook_due_at"))
        batch_op.drop_column("webhook_due_at")
        batch_op.drop_column("webhook_attempts")
        batch_op.drop_column("callback_url")
