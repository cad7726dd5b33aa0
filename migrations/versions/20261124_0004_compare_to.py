"""jobs.compare_to: a re-run of another job's inputs on another model version

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("compare_to", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_jobs_compare_to_jobs"), "jobs", ["compare_to"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("fk_jobs_compare_to_jobs"), type_="foreignkey")
        batch_op.drop_column("compare_to")
