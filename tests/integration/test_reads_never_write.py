"""Reads never write; lapsed card holds are released by the write path only.

A burst of every member GET route (and the card network's) leaves the database unchanged,
including while lapsed holds wait to be released: on SQLite `PRAGMA data_version` seen
from another connection, on PostgreSQL a checksum of every table's rows. Each check is
shown to fail on a write first. Reads compute a lapsed hold as released; a movement that
locks the account releases it before its rules run; the sweeper releases the rest, one
process at a time on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from banking.accounts.models import Account
from banking.audit import sealer
from banking.audit.models import AuditEvent
from banking.cards.models import CardAuthorization
from banking.core.db import Base, Database, utcnow
from banking.events import dispatcher
from banking.ledger import sweeper
from banking.ledger.verify import verify_ledger
from tests.cards_support import NETWORK, approved, funded_card
from tests.databases import ON_POSTGRES
from tests.factories import Member, keyed, make_member, open_account


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The background jobs off (only the requests under test may write), unless a test
    says; a low approval threshold so that the books hold a pending approval."""
    return {
        "hold_sweep_interval_s": 0,
        "events_dispatch_interval_s": 0,
        "scheduler_interval_s": 0,
        "interest_job_interval_s": 0,
        "webhook_allow_private": True,
        "approval_threshold_minor": 100_00,
        **getattr(request, "param", {}),
    }


Fingerprint = Callable[[], Awaitable[Any]]


def _set_clock(app: FastAPI, moment: dt.datetime) -> None:
    app.state.clock = lambda: moment


async def _settle_background_writes(app: FastAPI) -> None:
    """The audit sealer chains new audit rows in the background: let it finish, so that
    only the requests under test could change anything."""
    while await sealer.seal_once(app.state.db):
        pass


def _fingerprint(app: FastAPI) -> Fingerprint:
    db: Database = app.state.db
    if db.is_sqlite:
        # Another connection's view: data_version changes when any other connection
        # commits a change to the file.
        path = make_url(db.settings.database_url).database
        assert path
        watcher = sqlite3.connect(path)

        async def sqlite_version() -> Any:
            return watcher.execute("PRAGMA data_version").fetchone()[0]

        return sqlite_version

    async def checksum() -> Any:
        sums = {}
        async with db.engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                row = (
                    await connection.execute(
                        text(
                            f"SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' "
                            f"ORDER BY md5(t::text)), '')) FROM \"{table.name}\" AS t"
                        )
                    )
                ).one()
                sums[table.name] = tuple(row)
        return sums

    return checksum


async def _books(client: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
    """A member with an account, history, a card, an open hold and a lapsed one."""
    member = await make_member(client)
    start = utcnow()
    # Every movement but the open hold happens eight days ago (an account's clock never
    # goes back, so the lapsed hold must come before later changes).
    _set_clock(app, start - dt.timedelta(days=8))
    account, card = await funded_card(client, member, balance_minor=200_00)
    other, _ = await funded_card(client, member, balance_minor=10_00)
    moved = await client.post(
        "/v1/transfers",
        json={"source_account_id": account["id"], "target_account_id": other["id"], "amount": 5_00},
        headers=keyed(member.headers),
    )
    assert moved.status_code == 201, moved.text
    lapsed_hold = await approved(client, card, 30_00)
    # Placed before the first hold lapsed, so nothing has released that one.
    _set_clock(app, start - dt.timedelta(days=2))
    open_hold = await approved(client, card, 20_00)
    _set_clock(app, start)
    savings = await open_account(client, member, type="savings")
    payee_holder = await make_member(client)
    payee_account = await open_account(client, payee_holder)
    payee = await client.post(
        "/v1/payees",
        json={"name": "Grace", "account_number": payee_account["number"]},
        headers=member.headers,
    )
    assert payee.status_code == 201, payee.text
    schedule = await client.post(
        "/v1/scheduled-transfers",
        json={
            "source_account_id": account["id"],
            "target_account_id": other["id"],
            "amount": 1_00,
            "first_run_at": (start + dt.timedelta(days=3)).isoformat(),
            "frequency": "monthly",
        },
        headers=member.headers,
    )
    assert schedule.status_code == 201, schedule.text
    # Above the approval threshold: held (on an account of its own, so that the card
    # account's figures are the other tests'), waiting for a second person.
    large = await open_account(client, member, balance_minor=150_00)
    pending = await client.post(
        "/v1/transfers",
        json={
            "source_account_id": large["id"],
            "target_account_id": other["id"],
            "amount": 101_00,
        },
        headers=keyed(member.headers),
    )
    assert pending.status_code == 202, pending.text
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks"},
        headers=member.headers,
    )
    assert endpoint.status_code == 201, endpoint.text
    # Number the events (and try their deliveries) now: the dispatcher's writes are not
    # the reads under test.
    async with dispatcher.http_client(app.state.settings) as http:
        await dispatcher.tick(app.state.db, http)
    events = await client.get("/v1/events", headers=member.headers)
    assert events.status_code == 200, events.text
    assert events.json()["items"], "the books have no numbered event"
    return {
        "member": member,
        "account": account,
        "savings": savings,
        "card": card,
        "lapsed": lapsed_hold,
        "open": open_hold,
        "month": start.strftime("%Y-%m"),
        "payee": payee.json()["id"],
        "schedule": schedule.json()["id"],
        "approval": pending.json()["id"],
        "endpoint": endpoint.json()["id"],
        "event": events.json()["items"][0]["id"],
    }


def _member_get_paths(app: FastAPI, books: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """Every GET route a member or the card network calls, with its path filled in."""
    values = {
        "account_id": books["account"]["id"],
        "card_id": books["card"]["id"],
        "month": books["month"],
        "authorization_id": books["lapsed"],
        "payee_id": books["payee"],
        "schedule_id": books["schedule"],
        "approval_id": books["approval"],
        "endpoint_id": books["endpoint"],
        "event_id": books["event"],
    }
    member: Member = books["member"]
    paths = []
    for path, operations in app.openapi()["paths"].items():
        if "get" not in operations:
            continue
        if not path.startswith("/v1/") or path.startswith(("/v1/admin", "/v1/health")):
            continue
        if path == "/v1/events/stream":
            # A stream that never ends; it reads through the same queries as the list.
            continue
        names = re.findall(r"{(\w+)}", path)
        unknown = [name for name in names if name not in values]
        assert not unknown, f"no value for {unknown} in {path}: add it to this test"
        if path.endswith("/interest-rate"):
            values = {**values, "account_id": books["savings"]["id"]}
        filled = path.format(**{name: values[name] for name in names})
        values["account_id"] = books["account"]["id"]
        headers = NETWORK if path.startswith("/v1/card-authorizations") else member.headers
        paths.append((filled, headers))
        if filled.endswith("/balance"):
            paths.append((filled + "?verify=true", headers))
            day_ago = (utcnow() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            paths.append((filled + f"?at={day_ago}", headers))
        if filled.endswith("/balance-history"):
            today = utcnow().date()
            span = f"?from={today - dt.timedelta(days=30)}&to={today - dt.timedelta(days=1)}"
            paths[-1] = (filled + span, headers)
        if "{month}" in path:
            paths.extend((filled + f"?format={kind}", headers) for kind in ("csv", "pdf"))
        if path.endswith("/transactions"):
            paths.append((filled + "?status=declined&limit=20", headers))
            number = books["account"]["number"]
            filters = f"?q=a&min_amount=1&max_amount=100000&counterparty={number}"
            paths.append((filled + filters, headers))
        if path.endswith("/lookup"):
            paths[-1] = (filled + f"?number={books['account']['number']}", headers)
    return paths


class TestReadsNeverWrite:
    async def test_a_burst_of_every_member_get_leaves_the_database_unchanged(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        books = await _books(client, app)
        paths = _member_get_paths(app, books)
        assert len(paths) >= 15
        fingerprint = _fingerprint(app)
        await _settle_background_writes(app)
        before = await fingerprint()

        async def read(path: str, headers: dict[str, str]) -> httpx.Response:
            return await client.get(path, headers=headers)

        responses = await asyncio.gather(*(read(*item) for item in paths * 4))
        for response in responses:
            assert response.status_code == 200, (response.request.url, response.text)
        assert await fingerprint() == before
        # The check can fail: one write (a sign-up) changes it.
        await make_member(client)
        await _settle_background_writes(app)
        assert await fingerprint() != before

    async def test_reads_show_a_lapsed_hold_released_before_anything_releases_it(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        books = await _books(client, app)
        member, account = books["member"], books["account"]
        balance = (
            await client.get(f"/v1/accounts/{account['id']}/balance", headers=member.headers)
        ).json()
        assert (balance["balance"], balance["held"], balance["available_balance"]) == (
            195_00,
            20_00,
            175_00,
        )
        detail = (await client.get(f"/v1/accounts/{account['id']}", headers=member.headers)).json()
        listed = (await client.get("/v1/accounts", headers=member.headers)).json()["items"]
        snapshot = (await client.get("/v1/balances", headers=member.headers)).json()["items"]
        for shown in (detail, listed[0], snapshot[0]):
            assert (shown["held"], shown["available_balance"]) == (20_00, 175_00)
        history = (
            await client.get(
                f"/v1/cards/{books['card']['id']}/authorizations", headers=member.headers
            )
        ).json()["items"]
        statuses = {item["id"]: item for item in history}
        assert statuses[books["lapsed"]]["status"] == "expired"
        assert statuses[books["open"]]["status"] == "approved"
        network = (
            await client.get(f"/v1/card-authorizations/{books['lapsed']}", headers=NETWORK)
        ).json()
        assert network["status"] == "expired"
        assert network["settled_at"] == statuses[books["lapsed"]]["settled_at"]
        # Stored: still approved, still held.
        async with app.state.db.sessionmaker() as session:
            stored = await session.scalar(
                select(CardAuthorization.status).where(
                    CardAuthorization.id == uuid.UUID(books["lapsed"])
                )
            )
            held = await session.scalar(
                select(Account.held_minor).where(Account.id == uuid.UUID(account["id"]))
            )
        assert (stored, held) == ("approved", 50_00)
        # After the sweep the reads show exactly the same.
        assert await sweeper.sweep(app.state.db, now=app.state.clock()) == 1
        again = (await client.get(f"/v1/accounts/{account['id']}", headers=member.headers)).json()
        assert again == detail
        swept = (
            await client.get(f"/v1/card-authorizations/{books['lapsed']}", headers=NETWORK)
        ).json()
        assert swept == network


class TestTheWritePathReleases:
    async def test_a_debit_that_needs_the_lapsed_amount_releases_it_first(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        books = await _books(client, app)
        member, account = books["member"], books["account"]
        # 195 balance, 20 open hold: 175 available only if the lapsed 30 counts as released.
        response = await client.post(
            f"/v1/accounts/{account['id']}/withdrawals",
            json={"amount": 175_00},
            headers=keyed(member.headers),
        )
        assert response.status_code == 201, response.text
        async with app.state.db.sessionmaker() as session:
            stored = await session.scalar(
                select(CardAuthorization.status).where(
                    CardAuthorization.id == uuid.UUID(books["lapsed"])
                )
            )
            held = await session.scalar(
                select(Account.held_minor).where(Account.id == uuid.UUID(account["id"]))
            )
            events = list(
                await session.scalars(
                    select(AuditEvent.event_type).where(
                        AuditEvent.event_type == "card.hold_expired"
                    )
                )
            )
        assert (stored, held, events) == ("expired", 20_00, ["card.hold_expired"])
        balance = (
            await client.get(f"/v1/accounts/{account['id']}/balance", headers=member.headers)
        ).json()
        assert (balance["balance"], balance["available_balance"]) == (20_00, 0)
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok

    async def test_one_more_than_available_is_declined_as_reads_said(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        books = await _books(client, app)
        response = await client.post(
            f"/v1/accounts/{books['account']['id']}/withdrawals",
            json={"amount": 175_01},
            headers=keyed(books["member"].headers),
        )
        assert response.status_code == 409
        assert response.json()["code"] == "insufficient_funds"

    @pytest.mark.parametrize("settings_overrides", [{"hold_sweep_interval_s": 0.05}], indirect=True)
    async def test_the_background_sweeper_releases_lapsed_holds(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        books = await _books(client, app)
        for _ in range(200):
            async with app.state.db.sessionmaker() as session:
                stored = await session.scalar(
                    select(CardAuthorization.status).where(
                        CardAuthorization.id == uuid.UUID(books["lapsed"])
                    )
                )
            if stored == "expired":
                break
            await asyncio.sleep(0.05)
        assert stored == "expired"
        async with app.state.db.sessionmaker() as session:
            held = await session.scalar(
                select(Account.held_minor).where(Account.id == uuid.UUID(books["account"]["id"]))
            )
        assert held == 20_00
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok

    @pytest.mark.skipif(not ON_POSTGRES, reason="the advisory-lock leader is PostgreSQL's")
    async def test_only_the_leader_sweeps_on_postgresql(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        books = await _books(client, app)
        db: Database = app.state.db
        now = app.state.clock()
        async with db.engine.connect() as other:
            # Another process leads this run: this one releases nothing.
            await other.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": sweeper.SWEEP_LOCK_KEY}
            )
            assert await sweeper.sweep(db, now=now) == 0
            await other.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": sweeper.SWEEP_LOCK_KEY}
            )
            await other.commit()
        assert await sweeper.sweep(db, now=now) == 1
        assert books["lapsed"]
