"""test only: the next release's expand migration, applied under the running release

Revision ID: t1_rolling_expand
Revises: the code's head
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from banking.core.migrate import head_revision

revision: str = "t1_rolling_expand"
# On whatever the code's head is, so that this stays the next release's migration.
down_revision: str | None = head_revision()
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# A nullable column on a table every money movement writes, and a new table.
schema_change = "expand"


def upgrade() -> None:
    op.add_column("journal_entry", sa.Column("rolling_memo", sa.String(64), nullable=True))
    op.create_table(
        "rolling_probe",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("note", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("rolling_probe")
    with op.batch_alter_table("journal_entry") as batch_op:
        batch_op.drop_column("rolling_memo")
