"""Approval races over real HTTP against a real server process: two admins approving one
request at once execute it once (the other gets 409), and an approval racing a rejection
has exactly one winner. PostgreSQL runs two workers, so the decisions race across
processes as well. The money adds up and `banking ledger verify` passes afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import ON_POSTGRES
from tests.reliability.test_reversal_races import _key, _login, _member, _promote
from tests.server import Server, server_env

pytestmark = pytest.mark.slow

PAIRS = 4
AMOUNT = 20_00


async def _race(base_url: str, database_url: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=4 * PAIRS, max_keepalive_connections=4 * PAIRS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        tag = uuid.uuid4().hex[:8]
        emails = [f"{name}-{tag}@example.com" for name in ("payer", "payee", "one", "two")]
        for email in emails:
            await _member(http, email)
        for email in emails[2:]:
            await _promote(database_url, email)
        payer, payee, one, two = [await _login(http, email) for email in emails]
        source = (await http.post("/v1/accounts", json={"type": "checking"}, headers=payer)).json()
        target = (await http.post("/v1/accounts", json={"type": "checking"}, headers=payee)).json()
        funded = await http.post(
            f"/v1/accounts/{source['id']}/deposits",
            json={"amount": 1_000_00},
            headers={**payer, **_key()},
        )
        assert funded.status_code == 201, funded.text
        pending = []
        for _ in range(2 * PAIRS):
            asked = await http.post(
                "/v1/transfers",
                json={
                    "source_account_id": source["id"],
                    "target_account_number": target["number"],
                    "amount": AMOUNT,
                },
                headers={**payer, **_key()},
            )
            assert asked.status_code == 202, asked.text
            pending.append(asked.json()["id"])
        await asyncio.gather(*(http.get("/v1/health/live") for _ in range(4 * PAIRS)))
        calls = []
        for index, approval_id in enumerate(pending):
            url = f"/v1/approvals/{approval_id}"
            calls.append(http.post(f"{url}/approve", headers=one))
            if index < PAIRS:
                calls.append(http.post(f"{url}/approve", headers=two))
            else:
                calls.append(http.post(f"{url}/reject", json={"reason": "race"}, headers=two))
        answers = await asyncio.gather(*calls)
        balance = (await http.get(f"/v1/accounts/{source['id']}/balance", headers=payer)).json()
        received = (await http.get(f"/v1/accounts/{target['id']}/balance", headers=payee)).json()
        final = [
            (await http.get(f"/v1/approvals/{approval_id}", headers=payer)).json()["status"]
            for approval_id in pending
        ]
    return {"answers": answers, "balance": balance, "received": received, "final": final}


def test_concurrent_decisions_have_exactly_one_winner(database_url: str, tmp_path: Path) -> None:
    with Server(
        database_url,
        workers=2 if ON_POSTGRES else 1,
        log_path=tmp_path / "server.log",
        APPROVAL_THRESHOLD_MINOR="1000",
    ) as server:
        seen = asyncio.run(_race(server.base_url, database_url))
        answers = seen["answers"]
        for pair in range(2 * PAIRS):
            first, second = answers[2 * pair], answers[2 * pair + 1]
            statuses = sorted([first.status_code, second.status_code])
            assert statuses == [200, 409], ([first.text, second.text], server.logs())
            loser = first if first.status_code == 409 else second
            assert loser.json()["code"] == "approval_not_pending"
        final = seen["final"]
        assert final[:PAIRS] == ["executed"] * PAIRS
        assert set(final[PAIRS:]) <= {"executed", "rejected"}
        executed = final.count("executed")
        assert seen["balance"]["balance"] == 1_000_00 - executed * AMOUNT
        assert seen["balance"]["available_balance"] == seen["balance"]["balance"]
        assert seen["received"]["balance"] == executed * AMOUNT
    verified = subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
