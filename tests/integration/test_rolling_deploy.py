"""A rolling deploy: the next release's migration runs under a server of this release.

A real `banking serve` of the current code (the "old" release) serves a member; then the
next release's expand migration (tests/support/rolling_migrations, on the code's head: a
nullable column on `journal_entry`, a new table) is applied to its database, as
`banking migrate` of the new release would. The old server stays ready and keeps moving
money, and another old process can still start on that schema; a later contract
migration that this release is too old for turns readiness 503 and refuses a start.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from banking.client import BankingClient
from banking.core.migrate import head_revision, migration_problem
from tests.factories import PASSWORD
from tests.server import Server
from tests.support.rolling import CONTRACT, EXPAND, migrate_to

pytestmark = pytest.mark.slow


def _ready(server: Server) -> httpx.Response:
    return httpx.get(f"{server.base_url}/v1/health/ready", timeout=10)


def test_an_old_server_stays_ready_through_an_expand_migration_not_a_contract(
    database_url: str, tmp_path: Path
) -> None:
    with (
        Server(database_url, log_path=tmp_path / "old.log") as old,
        BankingClient(old.base_url) as bank,
    ):
        email = f"rolling-{uuid.uuid4().hex[:10]}@example.com"
        bank.signup(
            email, PASSWORD, first_name="Ada", last_name="Rolling", date_of_birth="1980-01-01"
        )
        bank.login(email, PASSWORD)
        source = bank.open_account("checking", "USD")
        target = bank.open_account("savings", "USD")
        bank.deposit(source.id, 10_000)
        assert _ready(old).status_code == 200

        migrate_to(database_url, EXPAND)

        ready = _ready(old)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"] == "ok"
        for amount in (100, 200, 300):
            bank.transfer(source.id, amount, target_account_id=target.id)
        bank.deposit(target.id, 50)
        assert bank.balance(source.id).balance == 10_000 - 600
        assert bank.balance(target.id).balance == 650
        assert len(list(bank.transactions(target.id))) == 4
        # An old process started (or restarted) during the rollout comes up on it too.
        with Server(database_url, log_path=tmp_path / "old-restarted.log") as restarted:
            assert _ready(restarted).status_code == 200
            with BankingClient(restarted.base_url) as other:
                other.signup(
                    f"rolling-{uuid.uuid4().hex[:10]}@example.com",
                    PASSWORD,
                    first_name="Bo",
                    last_name="Rolling",
                    date_of_birth="1980-01-01",
                )

        migrate_to(database_url, CONTRACT)

        not_ready = _ready(old)
        assert not_ready.status_code == 503
        problem = not_ready.json()
        assert problem["code"] == "not_ready"
        assert f"migration {CONTRACT} (contract) is not compatible" in problem["checks"]["database"]
        assert f"(head {head_revision()})" in problem["checks"]["database"]
        refused = asyncio.run(migration_problem(database_url))
        assert refused is not None
        assert "not compatible with this release" in refused
