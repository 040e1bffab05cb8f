"""Money under concurrent load over real HTTP against a real server process.

PostgreSQL runs with two workers (TEST_DATABASE_URL set), SQLite with one. Afterwards the
total is conserved to the cent, no balance is negative, `banking ledger verify` passes,
and every accepted transfer appears exactly once in both accounts' histories.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import ON_POSTGRES
from tests.factories import PASSWORD
from tests.server import Server, server_env

pytestmark = pytest.mark.slow

MEMBERS = 8
ACCOUNTS_PER_MEMBER = 3
CLIENTS = 16
TRANSFERS_PER_CLIENT = 130
OPENING_BALANCE = 50_000


async def _member(http: httpx.AsyncClient, index: int) -> dict[str, Any]:
    email = f"load{index}-{uuid.uuid4().hex[:6]}@example.com"
    signup = await http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Load",
            "last_name": f"Tester{index}",
            "date_of_birth": "1985-03-03",
        },
    )
    assert signup.status_code == 201, signup.text
    login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    accounts = []
    for _ in range(ACCOUNTS_PER_MEMBER):
        opened = await http.post("/v1/accounts", json={"type": "checking"}, headers=headers)
        assert opened.status_code == 201, opened.text
        account = opened.json()
        deposit = await http.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": OPENING_BALANCE},
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert deposit.status_code == 201, deposit.text
        accounts.append(account)
    return {"headers": headers, "accounts": accounts}


async def _history_ids(
    http: httpx.AsyncClient, headers: dict[str, str], account_id: str
) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, "kind": "transfer"}
        if cursor:
            params["cursor"] = cursor
        page = await http.get(
            f"/v1/accounts/{account_id}/transactions", params=params, headers=headers
        )
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


async def _run_load(base_url: str) -> None:
    limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        members = [await _member(http, index) for index in range(MEMBERS)]
        every_account = [account for member in members for account in member["accounts"]]
        owner_of = {account["id"]: member for member in members for account in member["accounts"]}
        accepted: list[dict[str, Any]] = []
        outcomes: Counter[str] = Counter()

        async def client_loop(seed: int) -> None:
            rng = random.Random(seed)
            member = members[seed % MEMBERS]
            for _ in range(TRANSFERS_PER_CLIENT):
                source = rng.choice(member["accounts"])
                target = rng.choice(every_account)
                response = await http.post(
                    "/v1/transfers",
                    json={
                        "source_account_id": source["id"],
                        "target_account_number": target["number"],
                        "amount": rng.randint(1, 9_000),
                    },
                    headers={**member["headers"], "Idempotency-Key": uuid.uuid4().hex},
                )
                assert response.status_code in (201, 409, 422), response.text
                if response.status_code == 201:
                    accepted.append(
                        {"id": response.json()["id"], "source": source, "target": target}
                    )
                    outcomes["posted"] += 1
                else:
                    outcomes[response.json()["code"]] += 1

        # The double-spend target: funds for exactly ten withdrawals of 1,000.
        spender = members[0]
        victim_open = await http.post(
            "/v1/accounts", json={"type": "savings"}, headers=spender["headers"]
        )
        victim = victim_open.json()
        funded = await http.post(
            f"/v1/accounts/{victim['id']}/deposits",
            json={"amount": 10_000},
            headers={**spender["headers"], "Idempotency-Key": str(uuid.uuid4())},
        )
        assert funded.status_code == 201

        async def double_spend() -> list[int]:
            responses = await asyncio.gather(
                *(
                    http.post(
                        f"/v1/accounts/{victim['id']}/withdrawals",
                        json={"amount": 1_000},
                        headers={**spender["headers"], "Idempotency-Key": str(uuid.uuid4())},
                    )
                    for _ in range(20)
                )
            )
            return [response.status_code for response in responses]

        async def retried_transfer() -> list[httpx.Response]:
            source, target = members[1]["accounts"][0], members[2]["accounts"][0]
            body = {
                "source_account_id": source["id"],
                "target_account_number": target["number"],
                "amount": 123,
            }
            headers = {**members[1]["headers"], "Idempotency-Key": "retried-" + uuid.uuid4().hex}
            return list(
                await asyncio.gather(
                    *(http.post("/v1/transfers", json=body, headers=headers) for _ in range(10))
                )
            )

        results = await asyncio.gather(
            double_spend(),
            retried_transfer(),
            *(client_loop(seed) for seed in range(CLIENTS)),
        )
        spend_statuses: list[int] = results[0]
        assert sorted(spend_statuses) == [201] * 10 + [409] * 10
        retried: list[httpx.Response] = results[1]
        retried_ids = {r.json()["id"] for r in retried if r.status_code == 201}
        assert len(retried_ids) == 1
        assert {r.status_code for r in retried} <= {201, 409}
        accepted.append(
            {
                "id": retried_ids.pop(),
                "source": members[1]["accounts"][0],
                "target": members[2]["accounts"][0],
            }
        )
        assert outcomes["posted"] > CLIENTS * TRANSFERS_PER_CLIENT // 2, outcomes

        # Conservation: the customers' total equals what was deposited minus withdrawn.
        total = 0
        for member in members:
            balances = await http.get("/v1/balances", headers=member["headers"])
            for item in balances.json()["items"]:
                assert item["balance"] >= 0
                assert item["available_balance"] >= 0
                total += item["balance"]
        deposited = MEMBERS * ACCOUNTS_PER_MEMBER * OPENING_BALANCE + 10_000
        assert total == deposited - 10 * 1_000

        # Every accepted transfer appears exactly once on each side.
        histories: dict[str, Counter[str]] = {}
        for account in every_account:
            headers = owner_of[account["id"]]["headers"]
            histories[account["id"]] = Counter(await _history_ids(http, headers, account["id"]))
        for transfer in accepted:
            source_id, target_id = transfer["source"]["id"], transfer["target"]["id"]
            if source_id == target_id:
                pytest.fail(f"a same-account transfer was accepted: {transfer['id']}")
            assert histories[source_id][transfer["id"]] == 1
            assert histories[target_id][transfer["id"]] == 1
        listed = sum(sum(counter.values()) for counter in histories.values())
        assert listed == 2 * len(accepted)


def test_concurrent_transfers_conserve_money_and_verify(database_url: str, tmp_path: Path) -> None:
    workers = 2 if ON_POSTGRES else 1
    env = {"DB_POOL_SIZE": "12"}
    with Server(database_url, workers=workers, log_path=tmp_path / "server.log", **env) as server:
        asyncio.run(_run_load(server.base_url))
    verify = subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "ledger ok" in verify.stdout
