from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from banking.audit import sealer
from banking.audit import service as audit
from banking.audit.models import AuditEvent
from banking.core import jobs
from banking.core.config import Settings
from banking.core.db import Database, utcnow, write_transaction
from tests.conftest import make_settings
from tests.factories import PASSWORD, login, make_member, make_staff


async def _seal(app: FastAPI) -> int:
    return await sealer.seal_once(app.state.db)


async def _verify(app: FastAPI) -> audit.VerifyReport:
    async with app.state.db.sessionmaker() as session:
        return await audit.verify(session)


class TestAdminAuditLog:
    async def test_admin_pages_through_the_log_newest_first(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        await login(client, member.email, "Not-The-Password-123")
        admin = await make_staff(client, app, "admin")
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/v1/admin/audit", headers=admin.headers, params=params)
            assert response.status_code == 200
            body = response.json()
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(seen, reverse=True)
        assert len(seen) == len(set(seen))
        async with app.state.db.sessionmaker() as session:
            total = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar()
        # Every row written before the first page, plus the reads of the earlier pages.
        assert total is not None
        assert len(seen) <= total

    async def test_filters_by_user_type_and_time(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        other = await make_member(client)
        await login(client, member.email, "Not-The-Password-123")
        admin = await make_staff(client, app, "admin")

        by_user = await client.get(
            "/v1/admin/audit", headers=admin.headers, params={"user": member.user_id}
        )
        items = by_user.json()["items"]
        assert {item["event_type"] for item in items} == {"user.signup", "auth.login"}
        assert other.user_id not in {item["actor_id"] for item in items}

        failures = await client.get(
            "/v1/admin/audit",
            headers=admin.headers,
            params={"user": member.user_id, "event_type": "auth.login"},
        )
        assert [item["outcome"] for item in failures.json()["items"]] == ["failure", "success"]
        assert failures.json()["items"][0]["details"]["reason"] == "bad_password"

        future = (utcnow() + dt.timedelta(hours=1)).isoformat()
        later = await client.get("/v1/admin/audit", headers=admin.headers, params={"since": future})
        assert later.json()["items"] == []
        earlier = await client.get(
            "/v1/admin/audit", headers=admin.headers, params={"until": future, "limit": 100}
        )
        assert len(earlier.json()["items"]) >= 6

    async def test_reading_the_log_is_itself_audited(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        admin = await make_staff(client, app, "admin")
        await client.get("/v1/admin/audit", headers=admin.headers)
        response = await client.get(
            "/v1/admin/audit", headers=admin.headers, params={"event_type": "staff.read"}
        )
        items = response.json()["items"]
        assert items[0]["actor_id"] == admin.user_id
        assert items[0]["target_type"] == "audit_log"

    @pytest.mark.parametrize(
        "params",
        [
            {"user": "not-a-uuid"},
            {"event_type": "DROP TABLE"},
            {"since": "2024-01-01T00:00:00"},
            {"limit": "1000"},
        ],
    )
    async def test_bad_filters_are_422(
        self, client: httpx.AsyncClient, app: FastAPI, params: dict[str, str]
    ) -> None:
        admin = await make_staff(client, app, "admin")
        response = await client.get("/v1/admin/audit", headers=admin.headers, params=params)
        assert response.status_code == 422

    async def test_support_and_members_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        support = await make_staff(client, app, "support")
        member = await make_member(client)
        for principal in (support, member):
            response = await client.get("/v1/admin/audit", headers=principal.headers)
            assert response.status_code == 403


class TestHashChain:
    async def test_the_chain_verifies_after_the_auth_flows(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        await login(client, member.email, "Not-The-Password-123")
        await client.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token})
        await client.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token})
        await client.post("/v1/auth/logout-all", headers=member.headers)
        # The background sealer may have chained some rows already; what matters is that
        # after a final seal every row is chained and the chain verifies.
        await _seal(app)
        report = await _verify(app)
        assert report.ok, report
        assert report.checked >= 5
        assert report.unsealed == 0

    async def test_an_edited_row_is_found(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        for _ in range(3):
            await make_member(client)
        await _seal(app)
        async with app.state.db.sessionmaker() as session, write_transaction(session):
            victim = (
                await session.execute(
                    select(AuditEvent.id).order_by(AuditEvent.id).offset(2).limit(1)
                )
            ).scalar_one_or_none()
            assert victim is not None
            await session.execute(
                update(AuditEvent).where(AuditEvent.id == victim).values(outcome="failure")
            )
        report = await _verify(app)
        assert not report.ok
        assert report.broken_at_id == victim
        assert report.reason == "row content does not match its hash"

    async def test_a_deleted_row_is_found(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        for _ in range(3):
            await make_member(client)
        await _seal(app)
        async with app.state.db.sessionmaker() as session, write_transaction(session):
            victim = (
                await session.execute(select(AuditEvent).order_by(AuditEvent.id).offset(1).limit(1))
            ).scalar_one()
            await session.delete(victim)
        report = await _verify(app)
        assert not report.ok
        assert "sequence gap" in str(report.reason)


def _unkeyed_digest(prev_hash: str, row: Any) -> str:
    """The chain formula before the audit key: SHA-256 of the previous hash and the row."""
    canonical = json.dumps(
        [
            row.id,
            row.occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            str(row.actor_id) if row.actor_id else None,
            row.event_type,
            row.target_type,
            row.target_id,
            row.outcome,
            row.ip,
            row.user_agent,
            row.request_id,
            row.details,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


async def _reseal_from(db: Database, first_seq: int, digest: Any) -> None:
    """What someone who can write the database does after editing a row: recompute every
    seal from that row on with `digest(prev_hash, row)`."""
    async with db.sessionmaker() as session, write_transaction(session):
        rows = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.chain_seq.is_not(None))
                    .order_by(AuditEvent.chain_seq)
                )
            )
            .scalars()
            .all()
        )
        prev_hash = audit.GENESIS_HASH
        for row in rows:
            if row.chain_seq is not None and row.chain_seq >= first_seq:
                row.prev_hash = prev_hash
                row.hash = digest(prev_hash, row)
            assert row.hash is not None
            prev_hash = row.hash


async def _edit_second_sealed_row(db: Database) -> int:
    async with db.sessionmaker() as session, write_transaction(session):
        victim = (
            await session.execute(select(AuditEvent).where(AuditEvent.chain_seq == 2))
        ).scalar_one()
        victim.outcome = "failure"
        victim.details = json.dumps({"edited": True})
        victim_id = victim.id
    return victim_id


async def _verify_with(settings: Settings) -> audit.VerifyReport:
    db = Database(settings)
    try:
        async with db.sessionmaker() as session:
            return await audit.verify(session)
    finally:
        await db.dispose()


async def _seal_with(settings: Settings) -> int:
    db = Database(settings)
    try:
        return await sealer.seal_once(db)
    finally:
        await db.dispose()


class TestKeyedChain:
    async def test_an_edit_resealed_with_the_unkeyed_formula_is_found(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        for _ in range(3):
            await make_member(client)
        await sealer.stop(app)
        await _seal(app)
        edited = await _edit_second_sealed_row(app.state.db)
        await _reseal_from(app.state.db, 2, _unkeyed_digest)
        report = await _verify(app)
        assert not report.ok
        assert report.broken_at_id == edited
        assert report.reason == "row content does not match its hash"

    async def test_an_edit_resealed_under_a_guessed_key_is_found(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        for _ in range(3):
            await make_member(client)
        await sealer.stop(app)
        await _seal(app)
        edited = await _edit_second_sealed_row(app.state.db)
        guessed = audit.AuditKey.from_secret("guessed-audit-key-0123456789abcdef0123456789")
        # Under the real key's id, so only the key itself is missing.
        forged = audit.AuditKey(
            audit.keys_for(app.state.settings).current.key_id,
            guessed.chain_key,
            guessed.checkpoint_key,
        )
        await _reseal_from(
            app.state.db, 2, lambda prev_hash, row: audit.row_digest(prev_hash, row, forged)
        )
        report = await _verify(app)
        assert (report.ok, report.broken_at_id) == (False, edited)

    async def test_every_seal_names_the_key_that_made_it(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await make_member(client)
        await _seal(app)
        current = audit.keys_for(app.state.settings).current
        async with app.state.db.sessionmaker() as session:
            key_ids = set(
                (
                    await session.execute(
                        select(AuditEvent.key_id).where(AuditEvent.chain_seq.is_not(None))
                    )
                ).scalars()
            )
        assert key_ids == {current.key_id}

    async def test_a_rotated_key_keeps_verifying_rows_sealed_under_the_old_one(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        old_key = app.state.settings.audit_key
        new_key = "rotated-audit-key-0123456789abcdef0123456789abcdef"
        await make_member(client)
        await sealer.stop(app)
        await _seal(app)
        rotated = make_settings(database_url, audit_key=new_key, audit_previous_keys=[old_key])
        await make_member(client)
        assert await _seal_with(rotated) >= 1
        report = await _verify_with(rotated)
        assert report.ok, report
        async with app.state.db.sessionmaker() as session:
            key_ids = list(
                (
                    await session.execute(
                        select(AuditEvent.key_id)
                        .where(AuditEvent.chain_seq.is_not(None))
                        .order_by(AuditEvent.chain_seq)
                    )
                ).scalars()
            )
        old_id = audit.AuditKey.from_secret(old_key).key_id
        new_id = audit.AuditKey.from_secret(new_key).key_id
        assert key_ids[0] == old_id
        assert key_ids[-1] == new_id
        # Without the old key configured, its rows cannot be checked: that is a failure.
        forgetful = await _verify_with(make_settings(database_url, audit_key=new_key))
        assert not forgetful.ok
        assert forgetful.reason == f"sealed under key id {old_id!r}, which is not configured"


class TestSealer:
    async def test_the_sealer_runs_with_the_app_and_stops_with_it(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        task = jobs.running_jobs(app)["audit-sealer"].task
        assert not task.done()
        await sealer.stop(app)
        # Stopped at a safe point, not cancelled mid-seal.
        assert task.done()
        assert not task.cancelled()

    async def test_an_error_while_sealing_is_logged_and_the_loop_goes_on(
        self, app: FastAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        calls = 0
        second_call = asyncio.Event()

        async def flaky(_db: object) -> int:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("database went away")
            second_call.set()
            return 0

        monkeypatch.setattr(sealer, "seal_once", flaky)
        task = asyncio.create_task(sealer.run(app.state.db, interval_s=0))
        await asyncio.wait_for(second_call.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert calls >= 2
        failures = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if '"audit_seal_failed"' in line
        ]
        assert len(failures) == 1, failures
        assert failures[0]["error_type"] == "RuntimeError"
        assert failures[0]["level"] == "error"

    async def test_unsealed_rows_are_reported_not_broken(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await sealer.stop(app)
        await make_member(client)
        report = await _verify(app)
        assert report.ok
        assert report.unsealed >= 1
        assert await _seal(app) == report.unsealed
        assert (await _seal(app)) == 0


async def test_a_role_change_is_audited_with_both_roles(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await make_staff(client, app, "support")
    response = await client.get(
        "/v1/admin/audit",
        headers=(await make_staff(client, app, "admin")).headers,
        params={"event_type": "user.role_changed", "user": admin.user_id},
    )
    [event] = response.json()["items"]
    assert event["details"] == {"from": "member", "to": "support"}
    assert event["target_id"] == admin.user_id
    assert uuid.UUID(event["target_id"])
    assert (await login(client, admin.email, PASSWORD)).status_code == 200
