"""Concurrent reversals and refunds, over real HTTP against a real server process.

Twelve reversals of 10.00 each of a 60.00 transfer, asked at once by one admin and then
approved at once by a second: exactly six post, the other six are declined
`already_reversed` (recorded), and the money adds up. Then approvals of staff reversals
and card-network refunds of one capture race each other: together they never give back
more than was captured. PostgreSQL runs two workers, so the requests race across
processes as well. `banking ledger verify` passes afterwards.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from banking.core.db import Database
from tests.cards_support import NETWORK, payment
from tests.conftest import make_settings
from tests.databases import ON_POSTGRES
from tests.factories import PASSWORD
from tests.server import Server, server_env

pytestmark = pytest.mark.slow

RACERS = 12
SHARE = 10_00


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _member(http: httpx.AsyncClient, email: str) -> None:
    signup = await http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Race",
            "last_name": "Reversal",
            "date_of_birth": "1980-01-01",
        },
    )
    assert signup.status_code == 201, signup.text


async def _login(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _promote(database_url: str, email: str) -> None:
    from banking.identity import service as identity
    from banking.identity.models import Role

    db = Database(make_settings(database_url))
    try:
        async with db.sessionmaker() as session:
            await identity.set_role(session, email=email, role=Role.admin)
    finally:
        await db.dispose()


async def _race(base_url: str, database_url: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        tag = uuid.uuid4().hex[:8]
        emails = [f"{name}-{tag}@example.com" for name in ("payer", "payee", "admin")]
        for email in emails:
            await _member(http, email)
        await _promote(database_url, emails[2])
        await _member(http, f"checker-{tag}@example.com")
        await _promote(database_url, f"checker-{tag}@example.com")
        payer, payee, admin = [await _login(http, email) for email in emails]
        checker = await _login(http, f"checker-{tag}@example.com")
        source = await http.post("/v1/accounts", json={"type": "checking"}, headers=payer)
        target = await http.post("/v1/accounts", json={"type": "checking"}, headers=payee)
        source_id, target = source.json()["id"], target.json()
        funded = await http.post(
            f"/v1/accounts/{source_id}/deposits",
            json={"amount": 100_00},
            headers={**payer, **_key()},
        )
        assert funded.status_code == 201, funded.text
        # The payee has more than enough: only the reversal cap may stop a reversal.
        extra = await http.post(
            f"/v1/accounts/{target['id']}/deposits",
            json={"amount": 100_00},
            headers={**payee, **_key()},
        )
        assert extra.status_code == 201, extra.text
        sent = await http.post(
            "/v1/transfers",
            json={
                "source_account_id": source_id,
                "target_account_number": target["number"],
                "amount": 6 * SHARE,
            },
            headers={**payer, **_key()},
        )
        assert sent.status_code == 201, sent.text
        # Open every connection first, so that the reversals leave in one burst.
        await asyncio.gather(*(http.get("/v1/health/live") for _ in range(RACERS)))
        asked = await asyncio.gather(
            *(
                http.post(
                    f"/v1/admin/entries/{sent.json()['id']}/reverse",
                    json={"reason": "duplicate payment", "amount": SHARE},
                    headers={**admin, **_key()},
                )
                for _ in range(RACERS)
            )
        )
        assert [response.status_code for response in asked] == [202] * RACERS, [
            response.text for response in asked
        ]
        reversals = await asyncio.gather(
            *(
                http.post(f"/v1/approvals/{response.json()['id']}/approve", headers=checker)
                for response in asked
            )
        )
        payer_balance = (await http.get(f"/v1/accounts/{source_id}/balance", headers=payer)).json()[
            "balance"
        ]
        payee_balance = (
            await http.get(f"/v1/accounts/{target['id']}/balance", headers=payee)
        ).json()["balance"]

        # A capture of 60.00, refunded by the network and reversed by staff at once.
        card = (
            await http.post(
                f"/v1/accounts/{source_id}/cards", json={"type": "virtual"}, headers=payer
            )
        ).json()
        held = await http.post(
            "/v1/card-authorizations", json=payment(card, 6 * SHARE), headers={**NETWORK, **_key()}
        )
        assert held.status_code == 201, held.text
        authorization = held.json()["id"]
        captured = await http.post(
            f"/v1/card-authorizations/{authorization}/capture",
            json={"amount": 6 * SHARE},
            headers={**NETWORK, **_key()},
        )
        assert captured.status_code == 200, captured.text
        capture_entry = captured.json()["capture_entry_id"]
        staff = [
            (
                await http.post(
                    f"/v1/admin/entries/{capture_entry}/reverse",
                    json={"reason": "merchant refund", "amount": SHARE},
                    headers={**admin, **_key()},
                )
            ).json()["id"]
            for _ in range(RACERS // 2)
        ]
        mixed = await asyncio.gather(
            *(
                http.post(
                    f"/v1/card-authorizations/{authorization}/refund",
                    json={"amount": SHARE},
                    headers={**NETWORK, **_key()},
                )
                if index % 2
                else http.post(f"/v1/approvals/{staff[index // 2]}/approve", headers=checker)
                for index in range(RACERS)
            )
        )
        card_balance = (await http.get(f"/v1/accounts/{source_id}/balance", headers=payer)).json()[
            "balance"
        ]
    return {
        "reversals": reversals,
        "payer": payer_balance,
        "payee": payee_balance,
        "mixed": mixed,
        "after_card": card_balance,
    }


def _outcome(response: httpx.Response) -> str:
    """A refund's answer (201 or a problem) or an approval's (executed or failed)."""
    body = response.json()
    if response.status_code == 201 or body.get("status") == "executed":
        return "posted"
    return str(body.get("decline_reason") or body.get("code") or "?")


def _outcomes(responses: list[httpx.Response]) -> Counter[str]:
    return Counter(_outcome(response) for response in responses)


def test_concurrent_reversals_never_give_back_more_than_the_entry(
    database_url: str, tmp_path: Path
) -> None:
    with Server(
        database_url, workers=2 if ON_POSTGRES else 1, log_path=tmp_path / "server.log"
    ) as server:
        seen = asyncio.run(_race(server.base_url, database_url))
        assert _outcomes(seen["reversals"]) == {"posted": 6, "already_reversed": 6}, (
            [response.text for response in seen["reversals"]],
            server.logs(),
        )
        assert seen["payer"] == 100_00
        assert seen["payee"] == 100_00
        assert _outcomes(seen["mixed"]) == {"posted": 6, "already_reversed": 6}, [
            response.text for response in seen["mixed"]
        ]
        # 100.00 - 60.00 captured + 60.00 given back.
        assert seen["after_card"] == 100_00
    verified = subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
