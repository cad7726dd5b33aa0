"""jobs.pruned_at: when retention deleted a job's inputs and results, and the index pruning walks

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import webapp.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPRUNED = "finished_at IS NOT NULL AND pruned_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("pruned_at", webapp.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(
            op.f("ix_jobs_unpruned_finished_at"),
            ["finished_at"],
            sqlite_where=sa.text(UNPRUNED),
            postgresql_where=sa.text(UNPRUNED),
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index(op.f("ix_jobs_unpruned_finished_at"))
        batch_op.drop_column("pruned_at")
