"""schema_revision: each applied migration with its expand/contract declaration

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import banking.core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# A new table no earlier release knows of (docs/migrations.md).
schema_change = "expand"


def upgrade() -> None:
    # Filled by the migration environment (core/schema_compat.py: record_step) from this
    # revision on; readiness reads it to accept a later, compatible schema.
    op.create_table(
        "schema_revision",
        sa.Column("revision", sa.String(length=64), nullable=False),
        sa.Column("down_revision", sa.String(length=64), nullable=True),
        sa.Column("schema_change", sa.String(length=16), nullable=False),
        sa.Column("applied_at", banking.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_schema_revision")),
    )


def downgrade() -> None:
    op.drop_table("schema_revision")
