"""keyed idempotency fingerprints; card-network records deleted; keyed audit chain

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:40:00.000000

Audit rows sealed before this revision carry an unkeyed SHA-256 chain. This revision
checks that chain with the old formula, then re-seals every sealed row, in chain order,
with the keyed formula under `AUDIT_KEY` (given by `banking migrate` through the Alembic
config's `audit_key` attribute). A broken old chain stops the upgrade: re-sealing it
would vouch for the tampering. Both formulas are copied here on purpose, so later changes
to `banking.audit.service` cannot change what this revision did.
"""

import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import banking.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Re-seals the audit chain: stop the previous release first (docs/deployment.md).
schema_change = "breaking"

# The scope of the card network's Idempotency-Key records (`cards.service.NETWORK_SCOPE`).
NETWORK_SCOPE = "network:card-network"
GENESIS_HASH = "0" * 64
BATCH = 1000
_CONTENT = (
    "id",
    "occurred_at",
    "actor_id",
    "event_type",
    "target_type",
    "target_id",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "details",
)


class LegacyAuditChainBroken(RuntimeError):
    pass


def _canonical(row: Any) -> str:
    return json.dumps(
        [
            row.id,
            row.occurred_at.isoformat(timespec="microseconds"),
            str(row.actor_id) if row.actor_id else None,
            row.event_type,
            row.target_type,
            row.target_id,
            row.outcome,
            row.ip,
            row.user_agent,
            row.request_id,
            row.details,
        ],
        separators=(",", ":"),
    )


def _derive(secret: str, label: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"banking-derived-key", info=label.encode()
    ).derive(secret.encode())


_AUDIT = sa.table(
    "audit_event",
    sa.column("id", sa.BigInteger()),
    sa.column("occurred_at", banking.core.db.UTCDateTime(timezone=True)),
    sa.column("actor_id", sa.Uuid()),
    *(sa.column(name, sa.String()) for name in _CONTENT[3:]),
    sa.column("chain_seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
    sa.column("key_id", sa.String()),
)


def _sealed_rows(connection: sa.Connection) -> Iterator[Any]:
    """Sealed audit rows in chain order, read in batches."""
    after = 0
    while True:
        rows = connection.execute(
            sa.select(*(_AUDIT.c[name] for name in (*_CONTENT, "chain_seq", "prev_hash", "hash")))
            .where(_AUDIT.c.chain_seq > after)
            .order_by(_AUDIT.c.chain_seq)
            .limit(BATCH)
        ).all()
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1].chain_seq


def _check_legacy_chain(connection: sa.Connection) -> int:
    """Verify the unkeyed chain; return how many rows it has. Reads only."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    for row in _sealed_rows(connection):
        legacy = hashlib.sha256((prev_hash + _canonical(row)).encode()).hexdigest()
        if (
            row.chain_seq != expected_seq
            or row.prev_hash != prev_hash
            or not hmac.compare_digest(row.hash or "", legacy)
        ):
            raise LegacyAuditChainBroken(
                f"the audit chain is broken at row {row.id} (chain_seq {row.chain_seq}): "
                "run `banking audit verify` with the previous release and investigate "
                "before upgrading; nothing was changed"
            )
        prev_hash = row.hash
        expected_seq += 1
    return expected_seq - 1


def _reseal(connection: sa.Connection, secret: str) -> None:
    chain_key = _derive(secret, "audit-chain-v1")
    key_id = hashlib.sha256(b"audit-key-id" + chain_key).hexdigest()[:12]
    update = (
        sa.update(_AUDIT)
        .where(_AUDIT.c.id == sa.bindparam("row_id"))
        .values(
            prev_hash=sa.bindparam("new_prev"),
            hash=sa.bindparam("new_hash"),
            key_id=sa.bindparam("new_key_id"),
        )
    )
    prev_hash = GENESIS_HASH
    changes = []
    for row in _sealed_rows(connection):
        message = f"{key_id}\n{prev_hash}\n{_canonical(row)}".encode()
        digest = hmac.new(chain_key, message, hashlib.sha256).hexdigest()
        changes.append(
            {"row_id": row.id, "new_prev": prev_hash, "new_hash": digest, "new_key_id": key_id}
        )
        prev_hash = digest
        if len(changes) == BATCH:
            connection.execute(update, changes)
            changes = []
    if changes:
        connection.execute(update, changes)


def upgrade() -> None:
    # Their fingerprints are unkeyed SHA-256 digests of bodies holding a card number and a
    # CVV, which a brute force over the clear fields around them recovers: delete them.
    # Members' records stay: their bodies hold no card data, and a retry of one of them
    # now gets `idempotency_key_reused` (its fingerprint no longer matches), never a
    # second movement.
    connection = op.get_bind()
    # Checked before anything changes, so a refusal leaves the database as it was.
    sealed = _check_legacy_chain(connection)
    secret = context.config.attributes.get("audit_key")
    if sealed and not secret:
        raise RuntimeError(
            "the audit log has sealed rows to re-seal under AUDIT_KEY: "
            "run this upgrade with `banking migrate` and AUDIT_KEY set"
        )
    op.execute(f"DELETE FROM idempotency_record WHERE scope = '{NETWORK_SCOPE}'")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
    if sealed:
        _reseal(connection, secret)


def downgrade() -> None:
    # Deleted idempotency records cannot come back (keyed fingerprints simply stop
    # matching), and the keyed seals stay: the previous release's `audit verify` reports
    # them as changed rows.
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("key_id")
