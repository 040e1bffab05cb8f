"""indexes for the balance at an instant and for counterparty names in the history

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:40:00.000000

- card_authorization (account_id, created_at): what an account held at an instant reads
  only the authorizations of the 61 days before it (ledger/history.py `balance_at_sync`);
- card_authorization (capture_entry_id): the merchant of each card payment in a history
  page (its `counterparty_name`), one index probe per row.

The balance itself needs no new index: (account_id, created_at) of postings exists.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Indexes only: the previous release neither knows nor minds them (docs/migrations.md).
schema_change = "expand"


def upgrade() -> None:
    with op.batch_alter_table("card_authorization", schema=None) as batch_op:
        batch_op.create_index(
            "ix_card_authorization_account_id_created_at",
            ["account_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_card_authorization_capture_entry_id", ["capture_entry_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("card_authorization", schema=None) as batch_op:
        batch_op.drop_index("ix_card_authorization_capture_entry_id")
        batch_op.drop_index("ix_card_authorization_account_id_created_at")
