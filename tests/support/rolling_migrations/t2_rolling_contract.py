"""test only: a contract migration of the release after next

Revision ID: t2_rolling_contract
Revises: t1_rolling_expand
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t2_rolling_contract"
down_revision: str | None = "t1_rolling_expand"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Removes what the release of t1_rolling_expand no longer uses; older releases may.
schema_change = "contract"


def upgrade() -> None:
    op.drop_table("rolling_probe")


def downgrade() -> None:
    pass
