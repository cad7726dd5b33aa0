"""CSV jobs: row counters and upload facts on jobs, and the job_chunks table

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import webapp.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("rows_done", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("rows_failed", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("upload", sa.JSON(), nullable=True))
    op.create_table(
        "job_chunks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("input", sa.LargeBinary(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("rows_failed", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("started_at", webapp.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", webapp.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_chunks_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_chunks")),
        sa.UniqueConstraint("job_id", "position", name=op.f("uq_job_chunks_job_id_position")),
    )


def downgrade() -> None:
    op.drop_table("job_chunks")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("upload")
        batch_op.drop_column("rows_failed")
        batch_op.drop_column("rows_done")
