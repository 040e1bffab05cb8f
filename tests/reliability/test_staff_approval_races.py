"""Races over the approvals of staff actions that lift a protection, over real HTTP
against a real server process: two admins approving one unfreeze or one daily-limit raise
at once apply it once (the other gets 409 `approval_not_pending`); an approval racing a
rejection has exactly one winner; two admins asking to unfreeze one account at once make
one approval. PostgreSQL runs two workers, so the requests race across processes too.
Afterwards each executed action left exactly one audit row and `banking audit verify`
passes."""

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
from sqlalchemy import select

from banking.audit.models import AuditEvent
from banking.core.db import Database
from tests.conftest import make_settings
from tests.databases import ON_POSTGRES
from tests.reliability.test_reversal_races import _login, _member, _promote
from tests.server import Server, server_env

pytestmark = pytest.mark.slow

PAIRS = 3
DEFAULT_LIMIT = 1_000_00
RAISED = 5_000_00


async def _audited(database_url: str, event_type: str) -> Counter[str]:
    """How many `event_type` audit rows each account has."""
    db = Database(make_settings(database_url))
    try:
        async with db.sessionmaker() as session:
            targets = (
                await session.execute(
                    select(AuditEvent.target_id).where(AuditEvent.event_type == event_type)
                )
            ).scalars()
            return Counter(str(target) for target in targets)
    finally:
        await db.dispose()


async def _race(base_url: str, database_url: str) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=4 * PAIRS, max_keepalive_connections=4 * PAIRS)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        tag = uuid.uuid4().hex[:8]
        emails = [f"{name}-{tag}@example.com" for name in ("owner", "maker", "one", "two")]
        for email in emails:
            await _member(http, email)
        for email in emails[1:]:
            await _promote(database_url, email)
        owner, maker, one, two = [await _login(http, email) for email in emails]

        async def open_account() -> str:
            opened = await http.post("/v1/accounts", json={"type": "checking"}, headers=owner)
            assert opened.status_code == 201, opened.text
            return str(opened.json()["id"])

        async def freeze(account_id: str) -> None:
            frozen = await http.post(f"/v1/admin/accounts/{account_id}/freeze", headers=maker)
            assert frozen.status_code == 200, frozen.text

        frozen_ids = [await open_account() for _ in range(2 * PAIRS)]
        limited_ids = [await open_account() for _ in range(2 * PAIRS)]
        asked_twice_ids = [await open_account() for _ in range(PAIRS)]
        for account_id in frozen_ids + asked_twice_ids:
            await freeze(account_id)
        pending: list[tuple[str, str]] = []
        for account_id in frozen_ids:
            asked = await http.post(
                f"/v1/admin/accounts/{account_id}/unfreeze",
                json={"reason": "race"},
                headers=maker,
            )
            assert asked.status_code == 202, asked.text
            pending.append((account_id, asked.json()["id"]))
        for account_id in limited_ids:
            asked = await http.patch(
                f"/v1/admin/accounts/{account_id}/limits",
                json={"daily_outgoing_limit": RAISED, "reason": "race"},
                headers=maker,
            )
            assert asked.status_code == 202, asked.text
            pending.append((account_id, asked.json()["id"]))
        # Warm the connections so the decisions leave together.
        await asyncio.gather(*(http.get("/v1/health/live") for _ in range(4 * PAIRS)))
        calls = []
        for index, (_, approval_id) in enumerate(pending):
            url = f"/v1/approvals/{approval_id}"
            calls.append(http.post(f"{url}/approve", headers=one))
            if index % (2 * PAIRS) < PAIRS:
                calls.append(http.post(f"{url}/approve", headers=two))
            else:
                calls.append(http.post(f"{url}/reject", json={"reason": "race"}, headers=two))
        for account_id in asked_twice_ids:
            for admin in (one, two):
                calls.append(http.post(f"/v1/admin/accounts/{account_id}/unfreeze", headers=admin))
        answers = await asyncio.gather(*calls)
        final = []
        for account_id, approval_id in pending:
            approval = (await http.get(f"/v1/approvals/{approval_id}", headers=maker)).json()
            account = (await http.get(f"/v1/admin/accounts/{account_id}", headers=maker)).json()
            final.append((approval, account))
    return {"answers": answers, "final": final, "asked_twice": asked_twice_ids}


def test_staff_action_decisions_have_exactly_one_winner(database_url: str, tmp_path: Path) -> None:
    with Server(
        database_url,
        workers=2 if ON_POSTGRES else 1,
        log_path=tmp_path / "server.log",
        DAILY_OUTGOING_LIMIT_MINOR=str(DEFAULT_LIMIT),
    ) as server:
        seen = asyncio.run(_race(server.base_url, database_url))
        answers, final = seen["answers"], seen["final"]
        decisions = 2 * len(final)
        for pair in range(len(final)):
            first, second = answers[2 * pair], answers[2 * pair + 1]
            statuses = sorted([first.status_code, second.status_code])
            assert statuses == [200, 409], ([first.text, second.text], server.logs())
            loser = first if first.status_code == 409 else second
            assert loser.json()["code"] == "approval_not_pending"
        asked_twice = answers[decisions:]
        for pair in range(len(seen["asked_twice"])):
            first, second = asked_twice[2 * pair], asked_twice[2 * pair + 1]
            assert sorted([first.status_code, second.status_code]) == [202, 409], (
                [first.text, second.text],
                server.logs(),
            )
            loser = first if first.status_code == 409 else second
            assert loser.json()["code"] == "approval_already_pending"

    for index, (approval, account) in enumerate(final):
        both_approve = index % (2 * PAIRS) < PAIRS
        if both_approve:
            assert approval["status"] == "executed", approval
        else:
            assert approval["status"] in {"executed", "rejected"}, approval
        executed = approval["status"] == "executed"
        if approval["kind"] == "account_unfreeze":
            assert account["status"] == ("active" if executed else "frozen")
        else:
            assert approval["kind"] == "daily_limit_raise"
            assert account["daily_outgoing_limit"] == (RAISED if executed else DEFAULT_LIMIT)
    # Exactly one audit row per executed action; none for a rejected one.
    unfrozen = asyncio.run(_audited(database_url, "account.unfrozen"))
    raised = asyncio.run(_audited(database_url, "account.limit_changed"))
    for approval, account in final:
        applied = 1 if approval["status"] == "executed" else 0
        if approval["kind"] == "account_unfreeze":
            assert (unfrozen[account["id"]], raised[account["id"]]) == (applied, 0)
        else:
            assert (unfrozen[account["id"]], raised[account["id"]]) == (0, applied)
    verified = subprocess.run(
        [sys.executable, "-m", "banking.cli", "audit", "verify"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
