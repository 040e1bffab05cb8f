"""`banking schedules run-due`, `schedules list` and `payees list` against a real database
the API wrote to."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from banking.cli import app as cli
from banking.core.config import get_settings
from tests.conftest import TEST_SECRETS
from tests.factories import make_member, open_account
from tests.integration.test_payments import balance_of


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"scheduler_interval_s": 0}


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_FORMAT", "json")
    for name, value in TEST_SECRETS.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()
    return CliRunner()


async def test_run_due_posts_the_due_occurrence_once_and_the_lists_show_it(
    client: httpx.AsyncClient, runner: CliRunner
) -> None:
    alice, bob = await make_member(client), await make_member(client)
    source = await open_account(client, alice, balance_minor=100_00)
    bobs = await open_account(client, bob)
    payee = await client.post(
        "/v1/payees",
        json={"name": "Bobby", "account_number": bobs["number"]},
        headers=alice.headers,
    )
    assert payee.status_code == 201
    # Due right away (a first run up to a minute in the past is accepted).
    first = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    created = await client.post(
        "/v1/scheduled-transfers",
        json={
            "source_account_id": source["id"],
            "target_account_number": bobs["number"],
            "amount": 12_34,
            "first_run_at": first.isoformat(),
            "frequency": "once",
        },
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text

    def invoke(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    try:
        ran = await asyncio.to_thread(invoke, "schedules", "run-due")
        assert "posted 1, declined 0 (to be retried), failed 0" in ran
        again = await asyncio.to_thread(invoke, "schedules", "run-due")
        assert "posted 0" in again
        listed = await asyncio.to_thread(invoke, "schedules", "list", alice.email)
        assert "completed" in listed
        assert "posted" in listed
        payees = await asyncio.to_thread(invoke, "payees", "list", alice.email)
        assert "Bobby" in payees
        unknown = await asyncio.to_thread(runner.invoke, cli, ["payees", "list", "no@example.com"])
        assert unknown.exit_code == 1
    finally:
        get_settings.cache_clear()
    assert await balance_of(client, bob, bobs) == 12_34
