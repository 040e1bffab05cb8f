"""payees, scheduled transfers and their runs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:44:45.761078
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import banking.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# New tables and their indexes only: the previous release neither reads nor writes them
# (the expand/contract rule, docs/migrations.md).
schema_change = "expand"


def upgrade() -> None:
    op.create_table(
        "payee",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("nickname", sa.String(length=60), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("account_number", sa.String(length=12), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("holder_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_payee_account_id_account")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], name=op.f("fk_payee_owner_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payee")),
    )
    with op.batch_alter_table("payee", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payee_owner_id_account_id", ["owner_id", "account_id"], unique=True
        )

    op.create_table(
        "scheduled_transfer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("source_account_id", sa.Uuid(), nullable=False),
        sa.Column("target_account_id", sa.Uuid(), nullable=False),
        sa.Column("target_account_number", sa.String(length=12), nullable=False),
        sa.Column("target_is_own", sa.Boolean(), nullable=False),
        sa.Column("payee_id", sa.Uuid(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=140), nullable=True),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("first_run_at", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("series_start_at", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("series_base", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("until", banking.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_occurrence", sa.Integer(), nullable=False),
        sa.Column("next_occurrence_at", banking.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("next_run_at", banking.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", banking.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_reason", sa.String(length=64), nullable=True),
        sa.Column("created_at", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", banking.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user.id"], name=op.f("fk_scheduled_transfer_owner_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["source_account_id"],
            ["account.id"],
            name=op.f("fk_scheduled_transfer_source_account_id_account"),
        ),
        sa.ForeignKeyConstraint(
            ["target_account_id"],
            ["account.id"],
            name=op.f("fk_scheduled_transfer_target_account_id_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_transfer")),
    )
    with op.batch_alter_table("scheduled_transfer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scheduled_transfer_owner_id_created_at", ["owner_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_scheduled_transfer_status_next_run_at", ["status", "next_run_at"], unique=False
        )

    op.create_table(
        "scheduled_transfer_run",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("scheduled_for", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ran_at", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["scheduled_transfer.id"],
            name=op.f("fk_scheduled_transfer_run_schedule_id_scheduled_transfer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_transfer_run")),
    )
    with op.batch_alter_table("scheduled_transfer_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scheduled_transfer_run_schedule_id_occurrence_attempt",
            ["schedule_id", "occurrence", "attempt"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduled_transfer_run", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_transfer_run_schedule_id_occurrence_attempt")

    op.drop_table("scheduled_transfer_run")
    with op.batch_alter_table("scheduled_transfer", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_transfer_status_next_run_at")
        batch_op.drop_index("ix_scheduled_transfer_owner_id_created_at")

    op.drop_table("scheduled_transfer")
    with op.batch_alter_table("payee", schema=None) as batch_op:
        batch_op.drop_index("ix_payee_owner_id_account_id")

    op.drop_table("payee")
