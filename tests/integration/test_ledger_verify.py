from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, insert, select, update

from banking.accounts.models import Account
from banking.core.idempotency import IdempotencyRecord
from banking.ledger.holds import card_network_account_id
from banking.ledger.models import Posting
from banking.ledger.service import cash_account_id
from tests.cards_support import approved, capture, issue_card
from tests.factories import Member, deposit, keyed, make_member, open_account, withdraw
from tests.server import server_env


def run_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestLedgerVerifyCommand:
    async def test_a_consistent_ledger_passes_and_a_tampered_balance_is_named(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=2_000)
        passed = run_verify(database_url)
        assert passed.returncode == 0, passed.stderr
        assert "ledger ok" in passed.stdout

        async with app.state.db.engine.begin() as connection:
            await connection.execute(
                update(Account)
                .where(Account.id == uuid.UUID(account["id"]))
                .values(balance_minor=2_001)
            )
        failed = run_verify(database_url)
        assert failed.returncode == 1
        assert account["id"] in failed.stderr
        assert "cached_balance" in failed.stderr
        balance = await client.get(
            f"/v1/accounts/{account['id']}/balance?verify=true", headers=member.headers
        )
        assert balance.json()["consistent"] is False


def run_verify_args(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify", *args],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Books:
    """A small ledger built through the API: one member, two accounts, a card."""

    member: Member
    checking: dict[str, Any]
    savings: dict[str, Any]
    january_deposit: str
    transfer: str
    declined: str
    hold: str
    captured: str


async def _books(client: httpx.AsyncClient, app: FastAPI) -> Books:
    member = await make_member(client)
    app.state.clock = lambda: dt.datetime(2026, 1, 20, 9, 0, tzinfo=dt.UTC)
    checking = await open_account(client, member)
    savings = await open_account(client, member, type="savings")
    january = await deposit(client, member, checking["id"], 500_00)
    assert january.status_code == 201, january.text
    app.state.clock = lambda: dt.datetime(2026, 2, 3, 9, 0, tzinfo=dt.UTC)
    moved = await client.post(
        "/v1/transfers",
        json={
            "source_account_id": checking["id"],
            "target_account_id": savings["id"],
            "amount": 120_00,
        },
        headers=keyed(member.headers, "rent-february"),
    )
    assert moved.status_code == 201, moved.text
    refused = await withdraw(client, member, savings["id"], 999_00)
    assert refused.status_code == 409, refused.text
    card = await issue_card(client, member, checking["id"])
    hold = await approved(client, card, 30_00)
    captured = await approved(client, card, 20_00)
    assert (await capture(client, captured, 20_00)).status_code == 200
    return Books(
        member=member,
        checking=checking,
        savings=savings,
        january_deposit=january.json()["id"],
        transfer=moved.json()["id"],
        declined=refused.json()["entry_id"],
        hold=hold,
        captured=captured,
    )


async def _sql(app: FastAPI, statement: Any) -> None:
    async with app.state.db.engine.begin() as connection:
        await connection.execute(statement)


async def _posting_ids(app: FastAPI, account_id: str) -> list[int]:
    async with app.state.db.engine.connect() as connection:
        rows = await connection.execute(
            select(Posting.id)
            .where(Posting.account_id == uuid.UUID(account_id))
            .order_by(Posting.id)
        )
        return [row[0] for row in rows]


async def _plant_time_order(app: FastAPI, books: Books) -> tuple[str, str]:
    # The transfer's leg on savings moved to before the account's previous posting would
    # not show: savings has one posting. Checking: the deposit (January), the transfer and
    # the capture (February). Stamp the capture in January, before the transfer.
    last = (await _posting_ids(app, books.checking["id"]))[-1]
    await _sql(
        app,
        update(Posting)
        .where(Posting.id == last)
        .values(created_at=dt.datetime(2026, 1, 25, tzinfo=dt.UTC)),
    )
    return "posting_time_order", books.checking["id"]


async def _plant_month(app: FastAPI, books: Books) -> tuple[str, str]:
    # January's closing no longer follows from its opening and its movements.
    first = (await _posting_ids(app, books.checking["id"]))[0]
    await _sql(app, update(Posting).where(Posting.id == first).values(balance_after_minor=499_00))
    return "month_reconciles", books.checking["id"]


async def _plant_lapsed_hold(app: FastAPI, books: Books) -> tuple[str, str]:
    # The hold is marked expired but its amount is still held on the account.
    from banking.cards.models import CardAuthorization

    await _sql(
        app,
        update(CardAuthorization)
        .where(CardAuthorization.id == uuid.UUID(books.hold))
        .values(status="expired", settled_at=dt.datetime(2026, 2, 4, tzinfo=dt.UTC)),
    )
    return "held_matches_holds", books.checking["id"]


async def _plant_early_expiry(app: FastAPI, books: Books) -> tuple[str, str]:
    # Released as expired (and the held amount with it) before its lifetime ended.
    from banking.cards.models import CardAuthorization

    await _sql(
        app,
        update(CardAuthorization)
        .where(CardAuthorization.id == uuid.UUID(books.hold))
        .values(status="expired", settled_at=dt.datetime(2026, 2, 4, tzinfo=dt.UTC)),
    )
    await _sql(
        app,
        update(Account).where(Account.id == uuid.UUID(books.checking["id"])).values(held_minor=0),
    )
    return "hold_state", books.hold


async def _plant_third_leg(app: FastAPI, books: Books) -> tuple[str, str]:
    # A posted entry with a third (zero) leg on the cash account.
    await _sql(
        app,
        insert(Posting).values(
            entry_id=uuid.UUID(books.transfer),
            account_id=cash_account_id("USD"),
            amount_minor=0,
            currency="USD",
            created_at=dt.datetime(2026, 2, 3, 9, 0, tzinfo=dt.UTC),
        ),
    )
    return "entry_shape", books.transfer


async def _plant_declined_legs(app: FastAPI, books: Books) -> tuple[str, str]:
    # A declined entry that moved money between two settlement accounts anyway.
    for account_id, amount in ((cash_account_id("USD"), -5), (card_network_account_id("USD"), 5)):
        await _sql(
            app,
            insert(Posting).values(
                entry_id=uuid.UUID(books.declined),
                account_id=account_id,
                amount_minor=amount,
                currency="USD",
                created_at=dt.datetime(2026, 2, 3, 9, 0, tzinfo=dt.UTC),
            ),
        )
    return "entry_shape", books.declined


async def _plant_idempotency(app: FastAPI, books: Books) -> tuple[str, str]:
    # The stored answer of the transfer now names the January deposit.
    await _sql(
        app,
        update(IdempotencyRecord)
        .where(IdempotencyRecord.key == "rent-february")
        .values(
            response_body=json.dumps(
                {"id": books.january_deposit, "kind": "transfer", "status": "posted"}
            ),
        ),
    )
    return "idempotency_entry", "rent-february"


async def _plant_clock(app: FastAPI, books: Books) -> tuple[str, str]:
    # The account's clock is behind its last posting: the next one could go back in time.
    await _sql(
        app,
        update(Account)
        .where(Account.id == uuid.UUID(books.savings["id"]))
        .values(stamped_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    )
    return "account_clock", books.savings["id"]


async def _plant_lost_event(app: FastAPI, books: Books) -> tuple[str, str]:
    # The transfer committed without its event (what the outbox rules out).
    from banking.events.models import Event

    await _sql(
        app,
        delete(Event).where(Event.subject_id == books.transfer, Event.type == "transfer.posted"),
    )
    return "entry_event", books.transfer


PLANTS = {
    "posting_time_order": _plant_time_order,
    "month_reconciles": _plant_month,
    "held_matches_holds (a lapsed hold still held)": _plant_lapsed_hold,
    "hold_state (expired before its lifetime)": _plant_early_expiry,
    "entry_shape (three legs)": _plant_third_leg,
    "entry_shape (a declined entry with legs)": _plant_declined_legs,
    "idempotency_entry": _plant_idempotency,
    "account_clock": _plant_clock,
    "entry_event": _plant_lost_event,
}


class TestPlantedViolations:
    @pytest.mark.parametrize("plant", PLANTS.values(), ids=PLANTS.keys())
    async def test_verify_exits_1_naming_the_planted_violation(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        database_url: str,
        plant: Callable[[FastAPI, Books], Awaitable[tuple[str, str]]],
    ) -> None:
        books = await _books(client, app)
        passed = run_verify(database_url)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        check, subject = await plant(app, books)
        failed = run_verify(database_url)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        named = [line for line in failed.stderr.splitlines() if line.startswith(check)]
        assert any(subject in line for line in named), failed.stderr


class TestSince:
    async def test_since_checks_what_changed_and_writes_the_gauges(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str, tmp_path: Path
    ) -> None:
        books = await _books(client, app)
        metrics = tmp_path / "ledger.prom"
        recent = run_verify_args(
            database_url, "--since", books.transfer, "--metrics-file", str(metrics)
        )
        assert recent.returncode == 0, recent.stdout + recent.stderr
        assert "ledger ok since 2026-02-03T09:00:00+00:00" in recent.stdout
        assert "banking_ledger_verified 1.0" in metrics.read_text()
        assert "banking_ledger_verified_at_seconds" in metrics.read_text()
        # A broken January posting of an account touched since February is still found:
        # a touched account's whole history is checked.
        await _plant_time_order(app, books)
        broken = run_verify_args(
            database_url, "--since", "2026-02-01T00:00:00Z", "--metrics-file", str(metrics)
        )
        assert broken.returncode == 1
        assert "posting_time_order" in broken.stderr
        assert "banking_ledger_verified 0.0" in metrics.read_text()
        # Nothing changed in the last minute of the real clock: nothing to check.
        quiet = run_verify_args(database_url, "--since", "2099-01-01T00:00:00Z")
        assert quiet.returncode == 0, quiet.stderr
        assert "0 entries, 0 postings, 0 accounts" in quiet.stdout

    def test_an_unreadable_since_is_refused(self, database_url: str) -> None:
        refused = run_verify_args(database_url, "--since", "last tuesday")
        assert refused.returncode == 2
        assert "--since" in refused.stderr
