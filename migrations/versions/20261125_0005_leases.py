"""Leases, pending publishes and idempotency keys: what the reconciler and retried submissions need

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import webapp.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("lease_until", webapp.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("published_at", webapp.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(255), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_jobs_idempotency_key"), ["idempotency_key"])
    with op.batch_alter_table("job_chunks") as batch_op:
        batch_op.add_column(sa.Column("lease_until", webapp.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("published_at", webapp.models.UTCDateTime(timezone=True), nullable=True))
    # Jobs and chunks already waiting were published by the code that made them.
    op.execute("UPDATE jobs SET published_at = created_at WHERE status = 'queued'")
    op.execute("UPDATE job_chunks SET published_at = (SELECT created_at FROM jobs WHERE jobs.id = job_chunks.job_id)")


def downgrade() -> None:
    with op.batch_alter_table("job_chunks") as batch_op:
        batch_op.drop_column("published_at")
        batch_op.drop_column("lease_until")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("uq_jobs_idempotency_key"), type_="unique")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("published_at")
        batch_op.drop_column("lease_until")
