"""A key stored by someone else between the ledger's lookup and its own store: every
write of the movement rolls back with the key's record (PostgreSQL then replays it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from banking.audit.models import AuditEvent
from banking.core import idempotency
from banking.core.db import Database, utcnow
from banking.core.idempotency import Claim, StoredResponse
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind, JournalEntry
from tests.databases import ON_POSTGRES
from tests.factories import make_member, open_account

WINNER = StoredResponse(201, b'{"winner":true}')


async def _counts(db: Database, key: str) -> tuple[int, int]:
    async with db.sessionmaker() as session:
        entries = (
            await session.execute(select(func.count()).where(JournalEntry.idempotency_key == key))
        ).scalar_one()
        audits = (
            await session.execute(
                select(func.count()).where(AuditEvent.event_type == "ledger.transfer")
            )
        ).scalar_one()
    return entries, audits


async def test_a_key_stored_meanwhile_rolls_the_movement_back(
    client: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    db: Database = app.state.db
    member = await make_member(client)
    source = await open_account(client, member, balance_minor=1_000)
    target = await open_account(client, member)
    key = uuid.uuid4().hex
    claim = Claim(scope=f"user:{member.user_id}", key=key, fingerprint="f" * 64)
    movement = ledger.Movement(
        kind=EntryKind.transfer,
        source_account_id=uuid.UUID(source["id"]),
        target_account_id=uuid.UUID(target["id"]),
        origin_account_id=uuid.UUID(source["id"]),
        amount_minor=100,
        currency="USD",
        idempotency_key=key,
    )
    other = create_async_engine(database_url)

    def store_elsewhere(connection: Connection) -> None:
        idempotency.store_sync(connection, claim, WINNER, now=utcnow(), ttl_s=3600)

    def resolve(connection: Connection) -> tuple[ledger.Movement, ledger.Render]:
        if ON_POSTGRES:
            # Another process wins the key now (the lookup already found nothing).
            _commit_elsewhere(other, store_elsewhere)
        else:
            # One writer on SQLite: the winner's record can only come from inside.
            store_elsewhere(connection)
        return movement, lambda _outcome: StoredResponse(201, b'{"loser":true}')

    entries_before, audits_before = await _counts(db, key)
    try:
        if ON_POSTGRES:
            result = await ledger.execute(db, resolve, claim=claim)
            assert result.replayed
            assert result.response == WINNER
        else:
            with pytest.raises(idempotency.IdempotencyKeyInFlight):
                await ledger.execute(db, resolve, claim=claim)
    finally:
        await other.dispose()
    assert await _counts(db, key) == (entries_before, audits_before)
    balance = await client.get(f"/v1/accounts/{source['id']}/balance", headers=member.headers)
    assert balance.json()["balance"] == 1_000


def _commit_elsewhere(engine: AsyncEngine, fn: Callable[[Connection], None]) -> None:
    """Commit `fn`'s write on another connection, from inside a ledger job (PostgreSQL)."""

    async def run() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(fn)

    await_only(run())
