"""account stamped_at: the latest time on the account's postings and holds

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import banking.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The previous release writes postings without moving account.stamped_at.
schema_change = "breaking"


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stamped_at", banking.core.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Accounts with history start from their latest posting or hold.
    op.execute(
        "UPDATE account SET stamped_at = (SELECT max(stamp) FROM ("
        " SELECT max(posting.created_at) AS stamp FROM posting"
        "  WHERE posting.account_id = account.id"
        " UNION ALL SELECT max(card_authorization.created_at) FROM card_authorization"
        "  WHERE card_authorization.account_id = account.id"
        " UNION ALL SELECT max(card_authorization.settled_at) FROM card_authorization"
        "  WHERE card_authorization.account_id = account.id) AS stamps)"
        " WHERE account.is_internal = false"
    )


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("stamped_at")
