"""models.targets: the named targets of a multi-output model (NULL for one target); models.trusted_types: the skops
types an admin trusted for that file

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch_op:
        batch_op.add_column(sa.Column("targets", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("trusted_types", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch_op:
        batch_op.drop_column("trusted_types")
        batch_op.drop_column("targets")
