"""card cvv failures and frozen reason

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:05:12.402317
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Cards frozen by the previous release would carry no frozen_reason.
schema_change = "breaking"


def upgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frozen_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("cvv_failures", sa.SmallInteger(), server_default="0", nullable=False)
        )
    # Cards frozen before this revision: by an admin or by their owner.
    op.execute(
        "UPDATE card SET frozen_reason = CASE WHEN frozen_by_admin THEN 'admin' ELSE 'owner' END"
        " WHERE status = 'frozen'"
    )


def downgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.drop_column("cvv_failures")
        batch_op.drop_column("frozen_reason")
