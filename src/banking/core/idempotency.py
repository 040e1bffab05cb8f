"""Idempotency keys (IETF draft "The Idempotency-Key HTTP Header Field").

Generic over who asks: a record belongs to a *scope* (`user:<id>` for members,
`network:<name>` for a card network client) and a key the client chose. Guarantees:

- The stored response is written in the same database transaction as the effect it
  describes, so a crash leaves either both or neither: a retry after a crash either
  replays the answer or runs the request for the first time, never twice.
- The same key with the same request fingerprint replays the stored status and body; with
  a different fingerprint it is refused (`idempotency_key_reused`).
- A duplicate that arrives while the first request is still running is refused with 409
  (`idempotency_key_in_flight`). "In flight" is never a stored marker that a crashed
  process could leave behind: within a process it is an in-memory set, and across
  PostgreSQL processes a transaction-scoped advisory lock taken inside the effect's
  transaction, which the database releases when the transaction or its connection ends.
- The unique (scope, key) constraint is the final guard: if two requests still race past
  both checks, only one transaction can insert the record; the other rolls back and
  replays the winner's answer.
- Records are kept for at least `idempotency_ttl_s` (24 h minimum); an expired record is
  ignored and replaced by the next use of its key.
- A fingerprint is an HMAC-SHA256 under a key derived from `CARD_ENCRYPTION_KEY` (label
  `FINGERPRINT_LABEL`; the key is never stored), so a copy of the database cannot test
  guesses of a request body against it; callers leave secrets out of the body they
  fingerprint (card routes put keyed card digests in place of the number and CVV).
  Checked by `tests/integration/test_card_data_at_rest.py`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.config import Settings
from banking.core.db import Base, BigId, UTCDateTime, utcnow
from banking.core.errors import Conflict, DomainError, InvalidRequest
from banking.core.prepared import Prepared
from banking.core.security import derive_key, keyed_digest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
FINGERPRINT_LABEL = "idempotency-fingerprint-v1"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_record"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_idempotency_record_scope_key", "scope", "key", unique=True),
        Index("ix_idempotency_record_expires_at", "expires_at"),
    )


class IdempotencyKeyRequired(DomainError):
    status = 400
    code = "idempotency_key_required"
    title = "This operation moves or reserves money and requires an Idempotency-Key header."


class IdempotencyKeyInvalid(DomainError):
    status = 400
    code = "idempotency_key_invalid"
    title = "The Idempotency-Key header must be 1 to 255 printable ASCII characters."


class IdempotencyKeyReused(InvalidRequest):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was already used with a different request."


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still being processed; retry shortly."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


@dataclass(frozen=True, slots=True)
class Claim:
    """One request's use of a key: who, which key, and what the request said."""

    scope: str
    key: str
    fingerprint: str

    @property
    def lock_id(self) -> int:
        """A signed 64-bit number for PostgreSQL's advisory locks."""
        digest = hashlib.sha256(f"{self.scope}\x00{self.key}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes


def user_scope(user_id: object) -> str:
    return f"user:{user_id}"


def require_key(key: str | None) -> str:
    """The key of a request that moves or reserves money: missing is a 400
    `idempotency_key_required` (the IETF draft's answer), so a retried request can never
    apply twice."""
    valid = validate_key(key, required=True)
    assert valid is not None
    return valid


def validate_key(key: str | None, *, required: bool) -> str | None:
    if key is None:
        if required:
            raise IdempotencyKeyRequired()
        return None
    if not _KEY.match(key):
        raise IdempotencyKeyInvalid()
    return key


def fingerprint_key(settings: Settings) -> bytes:
    """The key of request fingerprints (derived from a server secret, never stored)."""
    return derive_key(settings.card_encryption_key, FINGERPRINT_LABEL)


def fingerprint(method: str, path: str, body: Mapping[str, Any], *, key: bytes) -> str:
    """HMAC-SHA256 of the canonical request under `key` (see `fingerprint_key`)."""
    canonical = json.dumps(
        [method.upper(), path, body], sort_keys=True, separators=(",", ":"), default=str
    )
    return keyed_digest(key, canonical.encode())


class InFlight:
    """The keys this process is working on right now."""

    def __init__(self) -> None:
        self._keys: set[tuple[str, str]] = set()

    @contextlib.contextmanager
    def hold(self, claim: Claim) -> Iterator[None]:
        token = (claim.scope, claim.key)
        if token in self._keys:
            raise IdempotencyKeyInFlight()
        self._keys.add(token)
        try:
            yield
        finally:
            self._keys.discard(token)


IN_FLIGHT = InFlight()


def _replay_or_refuse(row: Any, claim: Claim) -> StoredResponse:
    """`row` is (fingerprint, response_status, response_body)."""
    if row[0] != claim.fingerprint:
        raise IdempotencyKeyReused()
    return StoredResponse(status=row[1], body=row[2].encode())


_RECORD = cast(Table, IdempotencyRecord.__table__)
# Built once (building and cache-keying a statement per call is the expensive part).
_LOOKUP_WHERE = (
    _RECORD.c.scope == bindparam("scope"),
    _RECORD.c.key == bindparam("key"),
    _RECORD.c.expires_at > bindparam("now", type_=_RECORD.c.expires_at.type),
)
_LOOKUP = select(_RECORD.c.fingerprint, _RECORD.c.response_status, _RECORD.c.response_body).where(
    *_LOOKUP_WHERE
)
_PREPARED_LOOKUP = Prepared(_LOOKUP)
_STORED_COLUMNS = ("fingerprint", "response_status", "response_body", "created_at", "expires_at")


# INSERT, or replace an expired record in place; a live one is left alone (no row
# written). Written as text with typed parameters (valid on SQLite and PostgreSQL alike);
# its parameters are those of `store_params`. `STORE_RETURNING` returns the row's id.
_STORE_SQL = (
    f'INSERT INTO idempotency_record (scope, "key", {", ".join(_STORED_COLUMNS)}) '
    f"VALUES (:v_scope, :v_key, {', '.join(f':v_{name}' for name in _STORED_COLUMNS)}) "
    'ON CONFLICT (scope, "key") DO UPDATE SET '
    + ", ".join(f"{name} = excluded.{name}" for name in _STORED_COLUMNS)
    + " WHERE idempotency_record.expires_at <= :v_now"
)
_STORE_PARAMS = (
    bindparam("v_scope", type_=_RECORD.c.scope.type),
    bindparam("v_key", type_=_RECORD.c.key.type),
    bindparam("v_now", type_=_RECORD.c.expires_at.type),
    *(bindparam(f"v_{name}", type_=_RECORD.c[name].type) for name in _STORED_COLUMNS),
)
STORE = text(_STORE_SQL).bindparams(*_STORE_PARAMS)
STORE_RETURNING = (
    text(_STORE_SQL + " RETURNING idempotency_record.id")
    .bindparams(*_STORE_PARAMS)
    .columns(_RECORD.c.id)
)
_STORE = Prepared(STORE)


def _lookup_params(claim: Claim, now: dt.datetime) -> dict[str, Any]:
    return {"scope": claim.scope, "key": claim.key, "now": now}


async def lookup(
    session: AsyncSession, claim: Claim, *, now: dt.datetime | None = None
) -> StoredResponse | None:
    """The stored answer for this claim, None if the key is unused (or expired).

    Raises `IdempotencyKeyReused` when the key was used for a different request.
    """
    row = (await session.execute(_LOOKUP, _lookup_params(claim, now or utcnow()))).first()
    return None if row is None else _replay_or_refuse(row, claim)


def lookup_sync(
    connection: Connection, claim: Claim, *, now: dt.datetime | None = None
) -> StoredResponse | None:
    row = _PREPARED_LOOKUP.first(connection, _lookup_params(claim, now or utcnow()))
    return None if row is None else _replay_or_refuse(row, claim)


_TRY_LOCK = Prepared(text("SELECT pg_try_advisory_xact_lock(:id)"))
# PostgreSQL: the advisory lock and the lookup in one round trip (one row: the lock's
# result, then the record's columns, NULL when there is none).
_LOCK_AND_LOOKUP = Prepared(
    select(
        func.pg_try_advisory_xact_lock(bindparam("lock_id", type_=BigInteger)),
        _RECORD.c.fingerprint,
        _RECORD.c.response_status,
        _RECORD.c.response_body,
    ).select_from(
        select(literal_column("1").label("one"))
        .subquery("one")
        .outerjoin(_RECORD, and_(*_LOOKUP_WHERE))
    )
)


def lock_sync(connection: Connection, claim: Claim) -> None:
    """Inside the effect's transaction: refuse if another process holds this key.

    On SQLite the whole service is one process whose writer runs one transaction at a
    time, so the in-process `IN_FLIGHT` set is the complete guard.
    """
    if connection.dialect.name != "postgresql":
        return
    row = _TRY_LOCK.first(connection, {"id": claim.lock_id})
    if row is None or not row[0]:
        raise IdempotencyKeyInFlight()


StoredRow = tuple[Any, ...]
"""A stored record as read: (fingerprint, response_status, response_body)."""


def claim_sync(connection: Connection, claim: Claim, *, now: dt.datetime) -> StoredRow | None:
    """`lock_sync` then the stored record for this claim (None if unused or expired),
    in one statement on PostgreSQL. Turn the record into the answer with `replay`.

    The lookup reads the statement's snapshot, which may predate a commit by the lock's
    previous holder; the unique (scope, key) constraint then stops `store_sync`, as for
    any race past the checks.
    """
    params = _lookup_params(claim, now)
    if connection.dialect.name != "postgresql":
        return _PREPARED_LOOKUP.first(connection, params)
    row = _LOCK_AND_LOOKUP.first(connection, {**params, "lock_id": claim.lock_id})
    assert row is not None
    if not row[0]:
        raise IdempotencyKeyInFlight()
    return None if row[1] is None else row[1:]


def replay(row: StoredRow, claim: Claim) -> StoredResponse:
    """The stored answer to replay; `IdempotencyKeyReused` if the request differs."""
    return _replay_or_refuse(row, claim)


def store_params(
    claim: Claim, response: StoredResponse, *, now: dt.datetime, ttl_s: int
) -> dict[str, Any]:
    """The parameters of `STORE` for this claim and answer."""
    return {
        "v_scope": claim.scope,
        "v_key": claim.key,
        "v_fingerprint": claim.fingerprint,
        "v_response_status": response.status,
        "v_response_body": response.body.decode(),
        "v_created_at": now,
        "v_expires_at": now + dt.timedelta(seconds=ttl_s),
        "v_now": now,
    }


def store_sync(
    connection: Connection,
    claim: Claim,
    response: StoredResponse,
    *,
    now: dt.datetime,
    ttl_s: int,
) -> bool:
    """Record the answer in the caller's transaction. False if the key is already taken
    (the caller must roll back and replay the stored answer)."""
    params = store_params(claim, response, now=now, ttl_s=ttl_s)
    return _STORE.rowcount(connection, params) == 1


def purge_expired_sync(connection: Connection, *, now: dt.datetime) -> int:
    record = cast(Table, IdempotencyRecord.__table__)
    result = connection.execute(delete(record).where(record.c.expires_at <= now))
    return int(result.rowcount)
