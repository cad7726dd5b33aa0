"""Tracking: outcomes of predictions, per-day feature summaries, and each model version's reference distribution

Revision ID: 0017
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import webapp.models

revision: str = "0017"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch_op:
        batch_op.add_column(sa.Column("reference", sa.JSON(), nullable=True))
    op.create_table(
        "outcomes",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("actual", sa.JSON(), nullable=False),
        sa.Column("label_true", sa.String(255), nullable=True),
        sa.Column("label_predicted", sa.String(255), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("error", sa.Float(), nullable=True),
        sa.Column("recorded_at", webapp.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_outcomes_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "row", name=op.f("pk_outcomes")),
    )
    op.create_index(
        op.f("ix_outcomes_model_name_model_version_day"), "outcomes", ["model_name", "model_version", "day"]
    )
    op.create_table(
        "feature_summaries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_summaries")),
    )
    op.create_index(
        op.f("ix_feature_summaries_model_name_model_version_day"),
        "feature_summaries",
        ["model_name", "model_version", "day"],
    )


def downgrade() -> None:
    op.drop_table("feature_summaries")
    op.drop_table("outcomes")
    with op.batch_alter_table("models") as batch_op:
        batch_op.drop_column("reference")
