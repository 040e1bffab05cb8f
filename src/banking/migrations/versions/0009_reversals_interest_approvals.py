"""reversals, savings interest, four-eyes approvals

journal_entry.reversed_entry_id links a reversal or refund to its original; interest_rate
(rate history), interest_accrual (daily) and interest_posting (monthly) for savings;
approval (four-eyes requests) and approval_threshold (staff-set per account).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import banking.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# New tables, and a nullable column on journal_entry with an index and a foreign key: the
# previous release never writes the column, but a constraint added to an existing table is
# not something the expand check can prove harmless, so it is declared breaking (a rolling
# deploy to it takes the previous release out of readiness; docs/migrations.md).
schema_change = "breaking"


def upgrade() -> None:
    with op.batch_alter_table("journal_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reversed_entry_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_journal_entry_reversed_entry_id_journal_entry",
            "journal_entry",
            ["reversed_entry_id"],
            ["id"],
        )
        batch_op.create_index(
            "ix_journal_entry_reversed_entry_id", ["reversed_entry_id"], unique=False
        )
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "interest_rate",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("set_by", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=140), nullable=True),
        sa.Column("created_at", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name="fk_interest_rate_account_id_account"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_interest_rate"),
    )
    op.create_index(
        "ix_interest_rate_account_id_effective_on",
        "interest_rate",
        ["account_id", "effective_on"],
        unique=False,
    )
    op.create_table(
        "interest_accrual",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("accrued_on", sa.Date(), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("interest_micro", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name="fk_interest_accrual_account_id_account"
        ),
        sa.PrimaryKeyConstraint("account_id", "accrued_on", name="pk_interest_accrual"),
    )
    op.create_table(
        "interest_posting",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("accrued_micro", sa.BigInteger(), nullable=False),
        sa.Column("carried_in_micro", sa.BigInteger(), nullable=False),
        sa.Column("posted_minor", sa.BigInteger(), nullable=False),
        sa.Column("carried_out_micro", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name="fk_interest_posting_account_id_account"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entry.id"], name="fk_interest_posting_entry_id_journal_entry"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_interest_posting"),
        sa.UniqueConstraint("account_id", "month", name="uq_interest_posting_account_id_month"),
    )
    utc = banking.core.db.UTCDateTime(timezone=True)
    op.create_table(
        "approval",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("maker_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("source_account_id", sa.Uuid(), nullable=False),
        sa.Column("target_account_id", sa.Uuid(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("held_minor", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=140), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", utc, nullable=True),
        sa.Column("reason", sa.String(length=140), nullable=True),
        sa.Column("decline_reason", sa.String(length=64), nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("expires_at", utc, nullable=False),
        sa.ForeignKeyConstraint(
            ["source_account_id"], ["account.id"], name="fk_approval_source_account_id_account"
        ),
        sa.ForeignKeyConstraint(
            ["target_account_id"], ["account.id"], name="fk_approval_target_account_id_account"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entry.id"], name="fk_approval_entry_id_journal_entry"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_approval"),
    )
    op.create_index("ix_approval_status_created_at", "approval", ["status", "created_at"])
    op.create_index("ix_approval_owner_id_created_at", "approval", ["owner_id", "created_at"])
    op.create_index(
        "ix_approval_source_account_id_status", "approval", ["source_account_id", "status"]
    )
    op.create_table(
        "approval_threshold",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("threshold_minor", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", utc, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name="fk_approval_threshold_account_id_account"
        ),
        sa.PrimaryKeyConstraint("account_id", name="pk_approval_threshold"),
    )


def downgrade() -> None:
    op.drop_table("approval_threshold")
    op.drop_index("ix_approval_source_account_id_status", table_name="approval")
    op.drop_index("ix_approval_owner_id_created_at", table_name="approval")
    op.drop_index("ix_approval_status_created_at", table_name="approval")
    op.drop_table("approval")
    op.drop_table("interest_posting")
    op.drop_table("interest_accrual")
    op.drop_index("ix_interest_rate_account_id_effective_on", table_name="interest_rate")
    op.drop_table("interest_rate")
    with op.batch_alter_table("journal_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_journal_entry_reversed_entry_id")
        batch_op.drop_constraint(
            "fk_journal_entry_reversed_entry_id_journal_entry", type_="foreignkey"
        )
        batch_op.drop_column("reversed_entry_id")
