from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from banking.accounts.models import Account
from tests.factories import make_member, open_account
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
