"""The transactional outbox: emitting an event is one row in the caller's transaction.

Guarantees: an event commits with the change it tells of, or not at all (a rollback takes
it away: tests/integration/test_events.py::TestOutbox); its id is known at once, stable,
and sorts by creation time; its data never carries a card number, CVV, password, token or
secret (`emit*` refuse such keys, at any depth).

How to emit, from any service or ledger transaction:

- on an `AsyncSession` inside `write_transaction`: `await outbox.emit(session, type=...,
  owner_id=..., subject_type=..., subject_id=..., data={...})`;
- on a synchronous `Connection` (the ledger's writer): `outbox.emit_sync(connection, ...)`
  with the same keywords;
- on the ledger's hot path, `rows(...)` gives the parameters of `INSERT_EVENTS[n]`, a
  statement the ledger adds to its other writes (one multi-row INSERT).

`data` is shaped like the API's own resource (see docs/events.md); keep it small.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.core.db import utcnow
from banking.core.prepared import Prepared
from banking.events.models import Event

EVENT = cast(Table, Event.__table__)

# Keys that must never appear in an event's data (nor therefore in a webhook body).
FORBIDDEN_KEYS = frozenset(
    {
        "pan",
        "card_number",
        "cvv",
        "cvc",
        "password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "secret",
    }
)

COLUMNS = (
    "id",
    "type",
    "created_at",
    "owner_id",
    "subject_type",
    "subject_id",
    "account_id",
    "data",
)


class ForbiddenEventData(ValueError):
    """An event's data names a secret (a programming error, never a user error)."""


def new_event_id(now: dt.datetime | None = None) -> uuid.UUID:
    """A UUID in the UUIDv7 layout: 48 bits of Unix milliseconds, then random bits."""
    millis = int(now.timestamp() * 1000) if now is not None else time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    # Version 7 and the RFC 9562 variant.
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


def _check(data: Any) -> None:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key in FORBIDDEN_KEYS:
                raise ForbiddenEventData(f"event data must not carry {key!r}")
            _check(value)
    elif isinstance(data, list | tuple):
        for value in data:
            _check(value)


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} in an event")


def dump(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), default=_default)


def row(
    *,
    type: str,
    owner_id: uuid.UUID | None,
    subject_type: str,
    subject_id: object,
    data: Mapping[str, Any],
    account_id: uuid.UUID | None = None,
    created_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The column values of one event."""
    _check(data)
    created_at = created_at or utcnow()
    return {
        "id": new_event_id(created_at),
        "type": type,
        "created_at": created_at,
        "owner_id": owner_id,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "account_id": account_id,
        "data": dump(data),
    }


def ledger_row(
    *,
    type: str,
    owner_id: uuid.UUID | None,
    subject_id: uuid.UUID,
    account_id: uuid.UUID,
    data: Mapping[str, str | int | None],
    created_at: dt.datetime,
) -> dict[str, Any]:
    """`row` for the ledger's hot path: `data` holds only strings, integers and None
    (already formatted, so encoding it is one pass of the C encoder) under the fixed keys of
    `ledger.movement_events`, which never name a secret (tests/integration/test_events.py
    checks them against FORBIDDEN_KEYS)."""
    return {
        "id": new_event_id(created_at),
        "type": type,
        "created_at": created_at,
        "owner_id": owner_id,
        "subject_type": "journal_entry",
        "subject_id": str(subject_id),
        "account_id": account_id,
        "data": json.dumps(data, separators=(",", ":")),
    }


def timestamp(value: dt.datetime) -> str:
    """How events write a time: RFC 3339 in UTC with a `Z`."""
    text: str = _default(value)
    return text


_INSERT_ONE = insert(EVENT).values(
    {name: bindparam(name, type_=EVENT.c[name].type) for name in COLUMNS}
)
_PREPARED_ONE = Prepared(_INSERT_ONE)


def _insert_many(count: int) -> Any:
    return insert(EVENT).values(
        [
            {name: bindparam(f"event_{name}_{index}", type_=EVENT.c[name].type) for name in COLUMNS}
            for index in range(count)
        ]
    )


# For the ledger's `Writes`: a movement emits one or two events, in one INSERT whose
# parameter names (`event_<column>_<n>`) differ from the other writes'.
INSERT_EVENTS = {count: _insert_many(count) for count in (1, 2)}


def params(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters of `INSERT_EVENTS[len(rows)]`."""
    return {
        f"event_{name}_{index}": value
        for index, values in enumerate(rows)
        for name, value in values.items()
    }


def emit_sync(connection: Connection, **fields: Any) -> uuid.UUID:
    """Write one event in the transaction of `connection` (keywords of `row`)."""
    values = row(**fields)
    _PREPARED_ONE.run(connection, values)
    return cast(uuid.UUID, values["id"])


async def emit(session: AsyncSession, **fields: Any) -> uuid.UUID:
    """Write one event in the session's transaction (inside `write_transaction`)."""
    values = row(**fields)
    await session.execute(_INSERT_ONE, values)
    return cast(uuid.UUID, values["id"])
