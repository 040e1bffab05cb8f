"""Transfer batches at once over real HTTP against a real server process.

Eight batches of 60 items, each from one member to the others' accounts in random order,
plus single transfers between the same accounts, all fired together (PostgreSQL: two
workers). Every request is answered 201 (no deadlock between batches whose accounts
overlap), the total is conserved, each batch posted exactly its posted items, and
`banking ledger verify` passes.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import ON_POSTGRES
from tests.factories import PASSWORD
from tests.server import Server, server_env

pytestmark = pytest.mark.slow

MEMBERS = 8
ITEMS = 60
SINGLES = 40
OPENING = 1_000_000


async def _member(http: httpx.AsyncClient, index: int) -> dict[str, Any]:
    email = f"batch{index}-{uuid.uuid4().hex[:6]}@example.com"
    signup = await http.post(
        "/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "first_name": "Batch",
              "last_name": f"Member{index}", "date_of_birth": "1980-01-01"},
    )  # fmt: skip
    assert signup.status_code == 201, signup.text
    login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    account = (await http.post("/v1/accounts", json={"type": "checking"}, headers=headers)).json()
    deposit = await http.post(
        f"/v1/accounts/{account['id']}/deposits",
        json={"amount": OPENING},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert deposit.status_code == 201, deposit.text
    return {"headers": headers, "account": account}


async def _run(base_url: str) -> None:
    rng = random.Random(19)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        members = [await _member(http, index) for index in range(MEMBERS)]

        def batch(member: dict[str, Any]) -> dict[str, Any]:
            others = [m for m in members if m is not member]
            return {
                "mode": rng.choice(["all_or_nothing", "independent"]),
                "items": [
                    {
                        "source_account_id": member["account"]["id"],
                        "target_account_number": rng.choice(others)["account"]["number"],
                        "amount": rng.randint(1, 500),
                    }
                    for _ in range(ITEMS)
                ],
            }

        def single() -> tuple[dict[str, Any], dict[str, Any]]:
            source, target = rng.sample(members, 2)
            body = {
                "source_account_id": source["account"]["id"],
                "target_account_number": target["account"]["number"],
                "amount": rng.randint(1, 500),
            }
            return source, body

        requests = [("/v1/transfer-batches", m, batch(m)) for m in members]
        requests += [("/v1/transfers", *single()) for _ in range(SINGLES)]
        rng.shuffle(requests)
        responses = await asyncio.gather(
            *(
                http.post(
                    path, json=body, headers={**m["headers"], "Idempotency-Key": uuid.uuid4().hex}
                )
                for path, m, body in requests
            )
        )
        statuses = [response.status_code for response in responses]
        assert statuses == [201] * len(requests), [
            r.text for r in responses if r.status_code != 201
        ]
        posted = sum(
            response.json().get("posted", 0)
            for (path, _m, _b), response in zip(requests, responses, strict=True)
            if path == "/v1/transfer-batches"
        )
        assert posted == MEMBERS * ITEMS
        total = 0
        for member in members:
            balance = await http.get(
                f"/v1/accounts/{member['account']['id']}/balance", headers=member["headers"]
            )
            total += balance.json()["balance"]
        assert total == MEMBERS * OPENING


def test_concurrent_batches_with_overlapping_accounts_all_post(
    database_url: str, tmp_path: Path
) -> None:
    workers = 2 if ON_POSTGRES else 1
    with Server(database_url, workers=workers, log_path=tmp_path / "server.log") as server:
        asyncio.run(_run(server.base_url))
    verify = subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
