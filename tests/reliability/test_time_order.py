"""Time order under concurrency, over real HTTP against a real server process.

A card capture fired together with transfers on the same account must still be stamped no
earlier than the account's previous posting: statements cut months by time, so a posting
with a later id and an earlier time makes the statement disagree with the balance.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from banking.ledger.models import Posting
from tests.cards_support import NETWORK, payment
from tests.factories import PASSWORD
from tests.server import Server, server_env

pytestmark = pytest.mark.slow

ROUNDS = 8
TRANSFERS_PER_ROUND = 3
OPENING = 1_000_000


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _member(http: httpx.AsyncClient) -> dict[str, str]:
    email = f"order-{uuid.uuid4().hex[:8]}@example.com"
    signup = await http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Time",
            "last_name": "Order",
            "date_of_birth": "1980-01-01",
        },
    )
    assert signup.status_code == 201, signup.text
    login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _race(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        headers = await _member(http)
        accounts = []
        for _ in range(2):
            opened = await http.post("/v1/accounts", json={"type": "checking"}, headers=headers)
            assert opened.status_code == 201, opened.text
            accounts.append(opened.json())
        source, target = accounts
        deposit = await http.post(
            f"/v1/accounts/{source['id']}/deposits",
            json={"amount": OPENING},
            headers={**headers, **_key()},
        )
        assert deposit.status_code == 201, deposit.text
        issued = await http.post(
            f"/v1/accounts/{source['id']}/cards", json={"type": "virtual"}, headers=headers
        )
        assert issued.status_code == 201, issued.text
        card = issued.json()
        for _ in range(ROUNDS):
            held = await http.post(
                "/v1/card-authorizations",
                json=payment(card, 500),
                headers={**NETWORK, **_key()},
            )
            assert held.status_code == 201, held.text
            authorization_id = held.json()["id"]
            calls = [
                http.post(
                    f"/v1/card-authorizations/{authorization_id}/capture",
                    json={"amount": 500},
                    headers={**NETWORK, **_key()},
                )
            ] + [
                http.post(
                    "/v1/transfers",
                    json={
                        "source_account_id": source["id"],
                        "target_account_id": target["id"],
                        "amount": 100,
                    },
                    headers={**headers, **_key()},
                )
                for _ in range(TRANSFERS_PER_ROUND)
            ]
            answers = await asyncio.gather(*calls)
            for answer in answers:
                assert answer.status_code in (200, 201), answer.text
        balance = await http.get(f"/v1/accounts/{source['id']}/balance", headers=headers)
        month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
        statement = await http.get(
            f"/v1/accounts/{source['id']}/statements/{month}", headers=headers
        )
        assert statement.status_code == 200, statement.text
        return {
            "account_id": source["id"],
            "balance": balance.json()["balance"],
            "statement": statement.json(),
        }


async def _postings(database_url: str, account_id: str) -> list[tuple[int, dt.datetime]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Posting.id, Posting.created_at)
                .where(Posting.account_id == uuid.UUID(account_id))
                .order_by(Posting.id)
            )
            return [(row[0], row[1]) for row in rows]
    finally:
        await engine.dispose()


def test_a_capture_racing_transfers_keeps_the_accounts_time_order(
    database_url: str, tmp_path: Path
) -> None:
    with Server(database_url, log_path=tmp_path / "server.log") as server:
        seen = asyncio.run(_race(server.base_url))
    expected = OPENING - ROUNDS * (500 + TRANSFERS_PER_ROUND * 100)
    assert seen["balance"] == expected
    postings = asyncio.run(_postings(database_url, seen["account_id"]))
    backwards = [
        (later_id, later_at, earlier_at)
        for (_, earlier_at), (later_id, later_at) in itertools.pairwise(postings)
        if later_at < earlier_at
    ]
    assert backwards == []
    statement = seen["statement"]
    assert statement["closing_balance"] == seen["balance"]
    assert (
        statement["opening_balance"] + statement["total_credits"] - statement["total_debits"]
        == statement["closing_balance"]
    )
    verify = subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
