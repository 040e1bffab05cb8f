"""Audit log: append-only, chained with a keyed hash.

Guarantees: rows are only ever inserted (the service has no update or delete besides
sealing); once sealed, each row's `hash` is an HMAC-SHA256, under the audit key named by
its `key_id`, of its content and the previous row's hash, so `verify` finds the first row
edited, deleted or reordered after sealing, even when the chain after it was recomputed by
someone without the key (tested in `tests/integration/test_audit.py::TestKeyedChain`).
A signed checkpoint (`make_checkpoint`, kept outside the database) lets `verify` also find
a chain cut short or rewritten after it (`tests/integration/test_audit_checkpoints.py`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit.models import AuditEvent
from banking.core.config import Settings
from banking.core.db import database_of, utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.core.pagination import PageRequest, cursor_int, keyset_after
from banking.core.prepared import Prepared
from banking.core.security import derive_key, keyed_digest

GENESIS_HASH = "0" * 64
SEAL_BATCH = 250
# Any constant shared by all processes: the advisory lock that makes the sealer single.
_SEALER_LOCK_KEY = 0x62616E6B


def event_values(
    *,
    event_type: str,
    outcome: str = "success",
    actor_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: object | None = None,
    client: ClientInfo | None = None,
    details: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The column values of one audit row (for `record`, `record_sync` or a batch insert)."""
    return {
        "occurred_at": occurred_at or utcnow(),
        "actor_id": actor_id,
        "event_type": event_type,
        "target_type": target_type,
        "target_id": str(target_id) if target_id is not None else None,
        "outcome": outcome,
        "ip": client.ip if client else None,
        "user_agent": client.user_agent if client else None,
        "request_id": client.request_id if client else None,
        "details": json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str),
    }


async def record(session: AsyncSession, **fields: Any) -> None:
    """Append one audit row inside the caller's transaction (no lock, no read).

    Takes the keyword arguments of `event_values`.
    """
    await session.execute(insert(AuditEvent).values(**event_values(**fields)))


_EVENT_COLUMNS = (
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
# One audit row from `event_values` (the ledger writes it among its other writes).
INSERT_EVENT = insert(AuditEvent).values(
    {name: bindparam(name, type_=AuditEvent.__table__.c[name].type) for name in _EVENT_COLUMNS}
)
_INSERT_EVENT = Prepared(INSERT_EVENT)


def record_sync(connection: Connection, **fields: Any) -> None:
    """`record` for code running on a synchronous connection (the ledger's writer)."""
    _INSERT_EVENT.run(connection, event_values(**fields))


async def record_alone(session: AsyncSession, **fields: Any) -> None:
    """Append one audit row in its own transaction (for traces that must outlive a rollback)."""
    async with write_transaction(session):
        await record(session, **fields)


@dataclass(frozen=True, slots=True)
class AuditKey:
    """One audit key: its id (derived from the key, so nothing else is configured), the
    key that chains rows and the key that signs checkpoints (both derived from it)."""

    key_id: str
    chain_key: bytes
    checkpoint_key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> AuditKey:
        chain_key = derive_key(secret, "audit-chain-v1")
        key_id = hashlib.sha256(b"audit-key-id" + chain_key).hexdigest()[:12]
        return cls(key_id, chain_key, derive_key(secret, "audit-checkpoint-v1"))


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """`AUDIT_KEY` (seals new rows, signs new checkpoints) and `AUDIT_PREVIOUS_KEYS` (still
    verify the rows and checkpoints they made)."""

    current: AuditKey
    by_id: dict[str, AuditKey]

    def get(self, key_id: str | None) -> AuditKey | None:
        return self.by_id.get(key_id) if key_id is not None else None


class AuditKeyMissing(RuntimeError):
    """No audit key is configured."""


@lru_cache(maxsize=8)
def _keys(current: str, previous: tuple[str, ...]) -> AuditKeys:
    if not current:
        raise AuditKeyMissing("AUDIT_KEY is not set")
    key = AuditKey.from_secret(current)
    by_id = {key.key_id: key}
    for secret in previous:
        old = AuditKey.from_secret(secret)
        by_id.setdefault(old.key_id, old)
    return AuditKeys(key, by_id)


def keys_for(settings: Settings) -> AuditKeys:
    return _keys(settings.audit_key, tuple(settings.audit_previous_keys))


def canonical_row(row: Any) -> str:
    occurred_at: dt.datetime = row.occurred_at
    return json.dumps(
        [
            row.id,
            occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
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


def row_digest(prev_hash: str, row: Any, key: AuditKey) -> str:
    """The seal of one row: HMAC-SHA256 under the audit key of its key id, the previous
    row's hash and its canonical content. Without the key it cannot be recomputed."""
    message = f"{key.key_id}\n{prev_hash}\n{canonical_row(row)}"
    return keyed_digest(key.chain_key, message.encode())


_COLUMNS = (
    AuditEvent.id,
    AuditEvent.occurred_at,
    AuditEvent.actor_id,
    AuditEvent.event_type,
    AuditEvent.target_type,
    AuditEvent.target_id,
    AuditEvent.outcome,
    AuditEvent.ip,
    AuditEvent.user_agent,
    AuditEvent.request_id,
    AuditEvent.details,
)


_AUDIT = cast(Table, AuditEvent.__table__)
# Built once: the sealer runs for every audited request, and building and cache-keying a
# statement per row cost more than executing it.
_LAST_SEALED = (
    select(_AUDIT.c.chain_seq, _AUDIT.c.hash)
    .where(_AUDIT.c.chain_seq.is_not(None))
    .order_by(_AUDIT.c.chain_seq.desc())
    .limit(1)
)
_UNSEALED = (
    select(*(_AUDIT.c[column.key] for column in _COLUMNS))
    .where(_AUDIT.c.chain_seq.is_(None))
    .order_by(_AUDIT.c.id)
    .limit(SEAL_BATCH)
)
_SEAL_ROW = (
    update(_AUDIT)
    .where(_AUDIT.c.id == bindparam("row_id"))
    .values(
        chain_seq=bindparam("seq"),
        prev_hash=bindparam("prev"),
        hash=bindparam("digest"),
        key_id=bindparam("key_id"),
    )
)


async def seal_pending(session: AsyncSession) -> int:
    """Chain every unsealed row, oldest id first, under `AUDIT_KEY`. Returns how many rows
    were sealed."""
    key = keys_for(database_of(session).settings).current
    sealed = 0
    while True:
        async with write_transaction(session):
            if session.get_bind().dialect.name == "postgresql":
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEALER_LOCK_KEY}
                )
            last = (await session.execute(_LAST_SEALED)).first()
            seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
            rows = (await session.execute(_UNSEALED)).all()
            seals = []
            for row in rows:
                seq += 1
                digest = row_digest(prev_hash, row, key)
                seals.append(
                    {
                        "row_id": row.id,
                        "seq": seq,
                        "prev": prev_hash,
                        "digest": digest,
                        "key_id": key.key_id,
                    }
                )
                prev_hash = digest
            if seals:
                # One executemany: one round trip (one thread hand-off on SQLite).
                await session.execute(_SEAL_ROW, seals)
            sealed += len(rows)
        if len(rows) < SEAL_BATCH:
            return sealed


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    unsealed: int
    broken_at_id: int | None
    reason: str | None
    head_seq: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None


class CheckpointInvalid(ValueError):
    """A checkpoint that is malformed, signed by no configured key, or altered."""


CHECKPOINT_VERSION = 1
_CHECKPOINT_FIELDS = ("version", "chain_seq", "hash", "created_at", "key_id")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The head of the chain at one moment, signed with the audit key. Stored outside the
    database, it proves later that the chain still reaches that row with that hash."""

    chain_seq: int
    hash: str
    created_at: str
    key_id: str
    signature: str

    @staticmethod
    def _signed_text(fields: dict[str, Any]) -> bytes:
        return json.dumps(
            {name: fields[name] for name in _CHECKPOINT_FIELDS},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def sign(cls, *, chain_seq: int, head_hash: str, now: dt.datetime, key: AuditKey) -> Checkpoint:
        fields = {
            "version": CHECKPOINT_VERSION,
            "chain_seq": chain_seq,
            "hash": head_hash,
            "created_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "key_id": key.key_id,
        }
        signature = keyed_digest(key.checkpoint_key, cls._signed_text(fields))
        return cls(chain_seq, head_hash, str(fields["created_at"]), key.key_id, signature)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": CHECKPOINT_VERSION,
                "chain_seq": self.chain_seq,
                "hash": self.hash,
                "created_at": self.created_at,
                "key_id": self.key_id,
                "signature": self.signature,
            },
            indent=2,
        )

    @classmethod
    def parse(cls, text: str, keys: AuditKeys) -> Checkpoint:
        """The checkpoint in `text`; `CheckpointInvalid` unless a configured key signed
        exactly these fields."""
        try:
            fields = json.loads(text)
        except ValueError as exc:
            raise CheckpointInvalid("not JSON") from exc
        if not isinstance(fields, dict) or set(fields) != {*_CHECKPOINT_FIELDS, "signature"}:
            raise CheckpointInvalid("not a checkpoint (unexpected fields)")
        if fields["version"] != CHECKPOINT_VERSION:
            raise CheckpointInvalid(f"unknown version {fields['version']!r}")
        chain_seq, head_hash = fields["chain_seq"], fields["hash"]
        texts = (fields["created_at"], fields["key_id"], fields["signature"], head_hash)
        if (
            type(chain_seq) is not int
            or chain_seq < 0
            or not all(isinstance(value, str) for value in texts)
        ):
            raise CheckpointInvalid("a field has the wrong type")
        key = keys.get(fields["key_id"])
        if key is None:
            raise CheckpointInvalid(f"signed with key id {fields['key_id']!r}, not configured")
        expected = keyed_digest(key.checkpoint_key, cls._signed_text(fields))
        if not hmac.compare_digest(expected, fields["signature"]):
            raise CheckpointInvalid("the signature does not match its contents")
        return cls(chain_seq, head_hash, fields["created_at"], key.key_id, fields["signature"])


async def verify(session: AsyncSession, *, checkpoint: Checkpoint | None = None) -> VerifyReport:
    """Walk the chain in order; report the first row whose link, key or content does not
    match. With a checkpoint, also report a chain that no longer reaches the checkpoint's
    row with the checkpoint's hash (cut short, or rewritten by someone with the key)."""
    keys = keys_for(database_of(session).settings)
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    at_checkpoint: str | None = GENESIS_HASH if checkpoint and checkpoint.chain_seq == 0 else None
    result = await session.stream(
        select(
            *_COLUMNS,
            AuditEvent.chain_seq,
            AuditEvent.prev_hash,
            AuditEvent.hash,
            AuditEvent.key_id,
        )
        .where(AuditEvent.chain_seq.is_not(None))
        .order_by(AuditEvent.chain_seq)
        .execution_options(yield_per=2000)
    )
    async for row in result:
        checked += 1
        reason = None
        key = keys.get(row.key_id)
        if row.chain_seq != expected_seq:
            reason = f"sequence gap before chain_seq {row.chain_seq}"
        elif row.prev_hash != prev_hash:
            reason = "link to the previous row does not match"
        elif key is None:
            reason = f"sealed under key id {row.key_id!r}, which is not configured"
        elif not hmac.compare_digest(row.hash or "", row_digest(prev_hash, row, key)):
            reason = "row content does not match its hash"
        if reason is not None:
            await result.close()
            return VerifyReport(checked, 0, row.id, reason)
        if checkpoint is not None and row.chain_seq == checkpoint.chain_seq:
            at_checkpoint = row.hash
        prev_hash = row.hash
        expected_seq += 1
    head_seq = expected_seq - 1
    unsealed = (
        await session.execute(select(func.count()).where(AuditEvent.chain_seq.is_(None)))
    ).scalar_one()
    if checkpoint is not None:
        if checkpoint.chain_seq > head_seq:
            return VerifyReport(
                checked,
                unsealed,
                None,
                f"chain truncated: the checkpoint of {checkpoint.created_at} is at chain_seq "
                f"{checkpoint.chain_seq}, the chain ends at {head_seq}",
                head_seq,
            )
        if at_checkpoint != checkpoint.hash:
            return VerifyReport(
                checked,
                unsealed,
                None,
                f"chain rewritten: the row at chain_seq {checkpoint.chain_seq} is not the one "
                f"the checkpoint of {checkpoint.created_at} signed",
                head_seq,
            )
    return VerifyReport(checked, unsealed, None, None, head_seq)


async def make_checkpoint(session: AsyncSession, *, now: dt.datetime | None = None) -> Checkpoint:
    """Seal pending rows, verify the whole chain, and sign its head with `AUDIT_KEY`.

    Raises `ChainBroken` rather than vouch for a chain that does not verify."""
    await seal_pending(session)
    report = await verify(session)
    if not report.ok:
        raise ChainBroken(report)
    last = (await session.execute(_LAST_SEALED)).first()
    await session.rollback()
    seq, head_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
    key = keys_for(database_of(session).settings).current
    return Checkpoint.sign(chain_seq=seq, head_hash=head_hash, now=now or utcnow(), key=key)


class ChainBroken(RuntimeError):
    def __init__(self, report: VerifyReport) -> None:
        super().__init__(report.reason)
        self.report = report


def list_events_sync(
    connection: Connection,
    *,
    page: PageRequest,
    user_id: uuid.UUID | None = None,
    event_type: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[list[Any], str | None]:
    """Rows newest first, filtered (rows with the `AuditEvent` attribute names); the
    route records the read itself (`record_alone`)."""
    after = page.after(cursor_int)
    statement = select(*cast(Table, AuditEvent.__table__).c)
    if user_id is not None:
        statement = statement.where(
            or_(
                AuditEvent.actor_id == user_id,
                and_(AuditEvent.target_type == "user", AuditEvent.target_id == str(user_id)),
            )
        )
    if event_type is not None:
        statement = statement.where(AuditEvent.event_type == event_type)
    if since is not None:
        statement = statement.where(AuditEvent.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.occurred_at < until)
    statement = (
        statement.where(keyset_after((AuditEvent.id,), after, descending=True))
        .order_by(AuditEvent.id.desc())
        .limit(page.limit + 1)
    )
    rows = list(connection.execute(statement))
    return page.slice(rows, key=lambda row: (row.id,))
