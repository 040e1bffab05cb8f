"""keyed idempotency fingerprints; card-network records deleted

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The scope of the card network's Idempotency-Key records (`cards.service.NETWORK_SCOPE`).
NETWORK_SCOPE = "network:card-network"


def upgrade() -> None:
    # Their fingerprints are unkeyed SHA-256 digests of bodies holding a card number and a
    # CVV, which a brute force over the clear fields around them recovers: delete them.
    # Members' records stay: their bodies hold no card data, and a retry of one of them
    # now gets `idempotency_key_reused` (its fingerprint no longer matches), never a
    # second movement.
    op.execute(f"DELETE FROM idempotency_record WHERE scope = '{NETWORK_SCOPE}'")


def downgrade() -> None:
    # Deleted records cannot come back; keyed fingerprints simply stop matching.
    pass
