"""Audit log: append-only, hash-chained.

Guarantees: rows are only ever inserted (the service has no update or delete besides
sealing); once sealed, each row's `hash` covers its content and the previous row's hash,
so `verify` finds the first row edited, deleted or reordered after sealing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit.models import AuditEvent
from banking.core.db import utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.core.pagination import PageRequest, cursor_int, keyset_after
from banking.core.prepared import Prepared

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


def row_digest(prev_hash: str, row: Any) -> str:
    occurred_at: dt.datetime = row.occurred_at
    canonical = json.dumps(
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
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


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
    .values(chain_seq=bindparam("seq"), prev_hash=bindparam("prev"), hash=bindparam("digest"))
)


async def seal_pending(session: AsyncSession) -> int:
    """Chain every unsealed row, oldest id first. Returns how many rows were sealed."""
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
                digest = row_digest(prev_hash, row)
                seals.append({"row_id": row.id, "seq": seq, "prev": prev_hash, "digest": digest})
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

    @property
    def ok(self) -> bool:
        return self.broken_at_id is None


async def verify(session: AsyncSession) -> VerifyReport:
    """Walk the chain in order; report the first row whose link or content does not match."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    result = await session.stream(
        select(*_COLUMNS, AuditEvent.chain_seq, AuditEvent.prev_hash, AuditEvent.hash)
        .where(AuditEvent.chain_seq.is_not(None))
        .order_by(AuditEvent.chain_seq)
        .execution_options(yield_per=2000)
    )
    async for row in result:
        checked += 1
        if row.chain_seq != expected_seq:
            await result.close()
            return VerifyReport(
                checked, 0, row.id, f"sequence gap before chain_seq {row.chain_seq}"
            )
        if row.prev_hash != prev_hash:
            await result.close()
            return VerifyReport(checked, 0, row.id, "link to the previous row does not match")
        if row.hash != row_digest(prev_hash, row):
            await result.close()
            return VerifyReport(checked, 0, row.id, "row content does not match its hash")
        prev_hash = row.hash
        expected_seq += 1
    unsealed = (
        await session.execute(select(func.count()).where(AuditEvent.chain_seq.is_(None)))
    ).scalar_one()
    return VerifyReport(checked, unsealed, None, None)


async def list_events(
    session: AsyncSession,
    *,
    page: PageRequest,
    user_id: uuid.UUID | None = None,
    event_type: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    reader_id: uuid.UUID | None = None,
    client: ClientInfo | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """Rows newest first, filtered; the read itself is recorded when `reader_id` is given."""
    after = page.after(cursor_int)
    statement = select(AuditEvent)
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
    rows = list((await session.execute(statement)).scalars())
    items, next_cursor = page.slice(rows, key=lambda row: (row.id,))
    if reader_id is not None:
        await record_alone(
            session,
            event_type="staff.read",
            actor_id=reader_id,
            target_type="audit_log",
            client=client,
            details={"rows": len(items)},
        )
    return items, next_cursor
