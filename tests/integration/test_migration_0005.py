"""Revision 0005 on a database that already holds data: card-network Idempotency-Key
records (unkeyed fingerprints of bodies with card data) are deleted, members' records
stay, and audit rows sealed with the old unkeyed chain are checked, then re-sealed under
AUDIT_KEY; a broken old chain stops the upgrade before anything changes.

Synchronous tests: each migration runs its own event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BigInteger, String, Uuid, column, insert, table, text

from banking.audit import service as audit
from banking.core.db import Database, UTCDateTime
from banking.core.migrate import upgrade
from tests.conftest import TEST_SECRETS, make_settings
from tests.databases import ON_POSTGRES, TEST_DATABASE_URL, _admin, _app_url

NETWORK_SCOPE = "network:card-network"
# The audit table as revision 0004 left it (no key_id).
AUDIT_AT_0004 = table(
    "audit_event",
    column("id", BigInteger()),
    column("occurred_at", UTCDateTime()),
    column("actor_id", Uuid()),
    *(
        column(name, String())
        for name in (
            "event_type",
            "target_type",
            "target_id",
            "outcome",
            "ip",
            "user_agent",
            "request_id",
            "details",
            "prev_hash",
            "hash",
        )
    ),
    column("chain_seq", BigInteger()),
)


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, to migrate step by step."""
    if not ON_POSTGRES:
        yield f"sqlite+aiosqlite:///{tmp_path / 'step-by-step.db'}"
        return
    name = f"banking_mig_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _app_url(TEST_DATABASE_URL, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _run(url: str, statements: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    async def main() -> list[Any]:
        db = Database(make_settings(url))
        results = []
        try:
            async with db.engine.begin() as connection:
                for sql, params in statements:
                    result = await connection.execute(text(sql), params)
                    results.append(result.all() if result.returns_rows else None)
        finally:
            await db.dispose()
        return results

    return asyncio.run(main())


def _legacy_chain(count: int) -> list[dict[str, Any]]:
    """Audit rows sealed the way the previous release did: unkeyed SHA-256."""
    rows = []
    prev_hash = audit.GENESIS_HASH
    start = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    for number in range(1, count + 1):
        row = {
            "id": number,
            "occurred_at": start + dt.timedelta(seconds=number, microseconds=number * 7),
            "actor_id": uuid.UUID(int=number) if number % 2 else None,
            "event_type": "auth.login",
            "target_type": "user",
            "target_id": str(uuid.UUID(int=number)),
            "outcome": "success",
            "ip": "203.0.113.7",
            "user_agent": "pytest",
            "request_id": f"req-{number}",
            "details": json.dumps({"n": number}, separators=(",", ":")),
        }
        canonical = json.dumps(
            [
                row["id"],
                row["occurred_at"].isoformat(timespec="microseconds"),
                str(row["actor_id"]) if row["actor_id"] else None,
                *(
                    row[name]
                    for name in (
                        "event_type",
                        "target_type",
                        "target_id",
                        "outcome",
                        "ip",
                        "user_agent",
                        "request_id",
                        "details",
                    )
                ),
            ],
            separators=(",", ":"),
        )
        digest = hashlib.sha256((prev_hash + canonical).encode()).hexdigest()
        rows.append({**row, "chain_seq": number, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    return rows


def _insert_at_0004(url: str, audit_rows: list[dict[str, Any]]) -> None:
    now = dt.datetime.now(dt.UTC)
    record = (
        'INSERT INTO idempotency_record (scope, "key", fingerprint, response_status, '
        "response_body, created_at, expires_at) VALUES (:scope, :key, :fingerprint, 201, "
        "'{}', :now, :later)"
    )
    params = {"now": now.replace(tzinfo=None) if not ON_POSTGRES else now}
    params["later"] = params["now"] + dt.timedelta(days=1)

    async def main() -> None:
        db = Database(make_settings(url))
        try:
            async with db.engine.begin() as connection:
                for scope, key in ((NETWORK_SCOPE, "auth-1"), ("user:someone", "transfer-1")):
                    await connection.execute(
                        text(record),
                        {**params, "scope": scope, "key": key, "fingerprint": "a" * 64},
                    )
                for row in audit_rows:
                    await connection.execute(insert(AUDIT_AT_0004).values(row))
        finally:
            await db.dispose()

    asyncio.run(main())


def _verify(url: str) -> audit.VerifyReport:
    async def main() -> audit.VerifyReport:
        db = Database(make_settings(url))
        try:
            async with db.sessionmaker() as session:
                return await audit.verify(session)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _revision(url: str) -> str:
    [rows] = _run(url, [("SELECT version_num FROM alembic_version", {})])
    return str(rows[0][0])


def test_network_records_are_deleted_and_members_records_kept(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0004")
    _insert_at_0004(empty_database_url, [])
    upgrade(empty_database_url, "0005", audit_key=TEST_SECRETS["audit_key"])
    [rows] = _run(empty_database_url, [("SELECT scope FROM idempotency_record", {})])
    assert [row[0] for row in rows] == ["user:someone"]


def test_rows_sealed_the_old_way_are_resealed_under_the_key(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0004")
    _insert_at_0004(empty_database_url, _legacy_chain(7))
    upgrade(empty_database_url, "0005", audit_key=TEST_SECRETS["audit_key"])
    report = _verify(empty_database_url)
    assert report.ok, report
    assert report.checked == 7
    key_id = audit.AuditKey.from_secret(TEST_SECRETS["audit_key"]).key_id
    [rows] = _run(empty_database_url, [("SELECT DISTINCT key_id FROM audit_event", {})])
    assert [row[0] for row in rows] == [key_id]


def test_a_broken_old_chain_stops_the_upgrade_before_any_change(
    empty_database_url: str,
) -> None:
    upgrade(empty_database_url, "0004")
    rows = _legacy_chain(5)
    rows[2]["outcome"] = "failure"  # edited after sealing
    _insert_at_0004(empty_database_url, rows)
    with pytest.raises(RuntimeError, match="audit chain is broken at row 3"):
        upgrade(empty_database_url, "0005", audit_key=TEST_SECRETS["audit_key"])
    assert _revision(empty_database_url) == "0004"
    [records] = _run(empty_database_url, [("SELECT count(*) FROM idempotency_record", {})])
    assert records[0][0] == 2


def test_sealed_rows_without_a_key_stop_the_upgrade(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0004")
    _insert_at_0004(empty_database_url, _legacy_chain(2))
    with pytest.raises(RuntimeError, match="AUDIT_KEY"):
        upgrade(empty_database_url, "0005")
    assert _revision(empty_database_url) == "0004"
