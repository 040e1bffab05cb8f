"""Scheduled transfers across SIGKILL: no occurrence ever runs twice, none is lost.

A real server process runs its scheduler every 50 ms. 120 one-off transfers fall due one
after the other over about three seconds; the whole server process group is killed with
SIGKILL twice while they run (and while some fall due with no server up), and restarted
on the same database. Afterwards every schedule is completed with exactly one posted
journal entry and one run, the target received exactly the sum, and `banking ledger
verify` passes.

On PostgreSQL a second test runs two server processes on one database: one leads (it
logs `scheduler_leader`); it is killed with SIGKILL mid-run and the other takes over within
seconds, and still every occurrence runs exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.databases import ON_POSTGRES
from tests.factories import PASSWORD
from tests.server import Server, server_env, wait_until

pytestmark = pytest.mark.slow

SCHEDULES = 120
AMOUNT = 1_00
SPREAD_S = 3.0
SCHEDULER_ENV = {"SCHEDULER_INTERVAL_S": "0.05", "DB_POOL_SIZE": "8"}
GIVE_UP_S = 90.0
LEADER_EVENT = '"event": "scheduler_leader"'


def _member(http: httpx.Client, name: str) -> dict[str, str]:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    signup = http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": name.title(),
            "last_name": "Tester",
            "date_of_birth": "1990-01-01",
        },
    )
    assert signup.status_code == 201, signup.text
    login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _account(http: httpx.Client, headers: dict[str, str], funded: int = 0) -> dict[str, Any]:
    response = http.post("/v1/accounts", json={"type": "checking"}, headers=headers)
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    if funded:
        deposit = http.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": funded},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert deposit.status_code == 201, deposit.text
    return account


def _schedule_many(base_url: str) -> tuple[list[str], dict[str, Any], dt.datetime]:
    """The schedules, due one after the other from a moment shortly after creation."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        alice, bob = _member(http, "alice"), _member(http, "bob")
        source = _account(http, alice, funded=SCHEDULES * AMOUNT * 2)
        target = _account(http, bob)
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
        ids = []
        for index in range(SCHEDULES):
            moment = start + dt.timedelta(seconds=SPREAD_S * index / SCHEDULES)
            response = http.post(
                "/v1/scheduled-transfers",
                json={
                    "source_account_id": source["id"],
                    "target_account_number": target["number"],
                    "amount": AMOUNT,
                    "description": f"order {index}",
                    "first_run_at": moment.isoformat(),
                    "frequency": "once",
                },
                headers=alice,
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids, target, start


async def _state(database_url: str) -> dict[str, Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            schedules = dict(
                (
                    await connection.execute(
                        text("SELECT CAST(id AS VARCHAR(40)), status FROM scheduled_transfer")
                    )
                ).all()
            )
            entries = (
                await connection.execute(
                    text(
                        "SELECT idempotency_key FROM journal_entry "
                        "WHERE status = 'posted' AND idempotency_key LIKE 'schedule:%'"
                    )
                )
            ).scalars()
            runs = (
                await connection.execute(
                    text("SELECT count(*) FROM scheduled_transfer_run WHERE status = 'posted'")
                )
            ).scalar_one()
            target_sum = (
                await connection.execute(
                    text(
                        "SELECT coalesce(sum(amount_minor), 0) FROM posting WHERE amount_minor > 0"
                        " AND entry_id IN (SELECT id FROM journal_entry"
                        " WHERE idempotency_key LIKE 'schedule:%')"
                    )
                )
            ).scalar_one()
            return {
                "schedules": schedules,
                "entries": list(entries),
                "runs": runs,
                "target_sum": target_sum,
            }
    finally:
        await engine.dispose()


def _completed(database_url: str) -> int:
    state = asyncio.run(_state(database_url))
    return sum(status == "completed" for status in state["schedules"].values())


def _check_exactly_once(database_url: str, ids: list[str]) -> None:
    state = asyncio.run(_state(database_url))
    # SQLite keeps UUIDs as 32 hex digits; compare in one form.
    per_schedule: dict[str, int] = {}
    for key in state["entries"]:
        schedule_id = uuid.UUID(key.split(":")[1]).hex
        per_schedule[schedule_id] = per_schedule.get(schedule_id, 0) + 1
    assert {uuid.UUID(s).hex for s in ids} == set(per_schedule), "an occurrence is missing"
    twice = {key: count for key, count in per_schedule.items() if count != 1}
    assert not twice, f"occurrences posted more than once: {twice}"
    assert state["runs"] == SCHEDULES
    assert state["target_sum"] == SCHEDULES * AMOUNT
    assert set(state["schedules"].values()) == {"completed"}
    verify = subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_no_occurrence_runs_twice_across_sigkill_and_restart(
    database_url: str, tmp_path: Path
) -> None:
    server = Server(database_url, log_path=tmp_path / "server.log", **SCHEDULER_ENV)
    server.start()
    try:
        ids, _target, start = _schedule_many(server.base_url)
        # Kill while the occurrences run: once a third of the way in, once later.
        for fraction, down_s in ((0.3, 0.5), (0.7, 0.2)):
            moment = start + dt.timedelta(seconds=SPREAD_S * fraction)
            time.sleep(max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds()))
            server.signal(signal.SIGKILL)
            server.wait()
            time.sleep(down_s)
            server.start()
        wait_until(
            lambda: _completed(database_url) == SCHEDULES,
            timeout_s=GIVE_UP_S,
            what="every schedule to complete",
        )
    finally:
        server.stop()
    _check_exactly_once(database_url, ids)


@pytest.mark.skipif(not ON_POSTGRES, reason="leadership is a PostgreSQL matter")
def test_a_follower_takes_over_when_the_leader_is_killed(database_url: str, tmp_path: Path) -> None:
    first = Server(database_url, log_path=tmp_path / "first.log", **SCHEDULER_ENV)
    second = Server(database_url, log_path=tmp_path / "second.log", **SCHEDULER_ENV)
    first.start()
    second.start()
    servers = [first, second]
    try:
        wait_until(
            lambda: any(LEADER_EVENT in server.logs() for server in servers),
            timeout_s=10,
            what="a scheduler leader",
        )
        leaders = [server for server in servers if LEADER_EVENT in server.logs()]
        assert len(leaders) == 1, "two processes lead at once"
        leader = leaders[0]
        follower = second if leader is first else first
        ids, _target, start = _schedule_many(follower.base_url)
        moment = start + dt.timedelta(seconds=SPREAD_S * 0.4)
        time.sleep(max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds()))
        killed_at = time.monotonic()
        leader.signal(signal.SIGKILL)
        leader.wait()
        wait_until(
            lambda: LEADER_EVENT in follower.logs(),
            timeout_s=10,
            what="the follower to take over",
        )
        takeover_s = time.monotonic() - killed_at
        wait_until(
            lambda: _completed(database_url) == SCHEDULES,
            timeout_s=GIVE_UP_S,
            what="every schedule to complete",
        )
    finally:
        for server in servers:
            server.stop()
    print(f"takeover within {takeover_s:.2f} s of the SIGKILL")
    _check_exactly_once(database_url, ids)
