"""Expired idempotency records are purged in small batches: by the background task of
each API process and by `banking idempotency purge`; live records are never touched."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from typer.testing import CliRunner

from banking.cli import app as cli
from banking.core import idempotency_purge, jobs
from banking.core.config import get_settings
from banking.core.db import Database, utcnow
from banking.core.idempotency import IdempotencyRecord
from tests.cards_support import NETWORK, funded_card, payment
from tests.conftest import TEST_SECRETS
from tests.factories import make_member


async def _add_records(db: Database, *, expired: int, live: int, now: dt.datetime) -> None:
    async with db.sessionmaker() as session, session.begin():
        for index in range(expired + live):
            lapsed = index < expired
            session.add(
                IdempotencyRecord(
                    scope="user:test",
                    key=f"{'old' if lapsed else 'new'}-{index}",
                    fingerprint="0" * 64,
                    response_status=201,
                    response_body="{}",
                    created_at=now - dt.timedelta(days=2 if lapsed else 0),
                    expires_at=now + dt.timedelta(seconds=-1 if lapsed else 3600),
                )
            )


async def _keys(db: Database) -> list[str]:
    async with db.sessionmaker() as session:
        return sorted((await session.execute(select(IdempotencyRecord.key))).scalars())


class TestPurge:
    async def test_only_expired_records_are_deleted_batch_by_batch(self, app: FastAPI) -> None:
        db: Database = app.state.db
        now = utcnow()
        await _add_records(db, expired=7, live=3, now=now)
        assert await idempotency_purge.purge_batch(db, now=now, batch=3) == 3
        assert await idempotency_purge.purge_expired(db, now=now, batch=3) == 4
        assert await _keys(db) == ["new-7", "new-8", "new-9"]
        assert await idempotency_purge.purge_expired(db, now=now) == 0

    async def test_a_purged_key_can_be_used_again_and_a_live_one_still_replays(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        headers = {**NETWORK, "Idempotency-Key": "pay-1"}
        first = await client.post("/v1/card-authorizations", json=payment(card), headers=headers)
        assert first.status_code == 201
        await idempotency_purge.purge_expired(app.state.db, now=utcnow())
        replay = await client.post("/v1/card-authorizations", json=payment(card), headers=headers)
        assert replay.headers.get("idempotent-replayed") == "true"
        assert replay.json()["id"] == first.json()["id"]
        ttl = app.state.settings.idempotency_ttl_s
        later = utcnow() + dt.timedelta(seconds=ttl + 1)
        assert await idempotency_purge.purge_expired(app.state.db, now=later) >= 1
        again = await client.post("/v1/card-authorizations", json=payment(card), headers=headers)
        assert again.status_code == 201
        assert again.json()["id"] != first.json()["id"]

    async def test_the_background_task_purges_on_its_interval(
        self, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        db: Database = app.state.db
        await _add_records(db, expired=2, live=1, now=utcnow())
        # Each finished run reports how many records it deleted; the test waits on that
        # event instead of polling the table.
        runs: asyncio.Queue[int] = asyncio.Queue()
        purge = idempotency_purge.purge_expired

        async def observed(db: Database, *, now: dt.datetime) -> int:
            deleted = await purge(db, now=now)
            runs.put_nowait(deleted)
            return deleted

        monkeypatch.setattr(idempotency_purge, "purge_expired", observed)
        task = asyncio.create_task(idempotency_purge.run(db, 0.01))
        try:
            first = await asyncio.wait_for(runs.get(), timeout=10)
            second = await asyncio.wait_for(runs.get(), timeout=10)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        # The first run deleted the two expired records, the next one found nothing more.
        assert (first, second) == (2, 0)
        assert await _keys(db) == ["new-2"]

    async def test_the_api_process_runs_the_task_unless_the_interval_is_zero(
        self, app: FastAPI
    ) -> None:
        task = jobs.running_jobs(app)["idempotency-purge"].task
        assert task.get_name() == "idempotency-purge"
        assert not task.done()

    @pytest.mark.parametrize(
        "settings_overrides", [{"idempotency_purge_interval_s": 0}], indirect=True
    )
    async def test_an_interval_of_zero_starts_no_task(self, app: FastAPI) -> None:
        assert "idempotency-purge" not in jobs.running_jobs(app)


@pytest.fixture
def runner(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_FORMAT", "json")
    for name, value in TEST_SECRETS.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_the_purge_command_deletes_expired_records(runner: CliRunner) -> None:
    settings = get_settings()

    async def prepare() -> None:
        db = Database(settings)
        try:
            await _add_records(db, expired=3, live=2, now=utcnow())
        finally:
            await db.dispose()

    async def remaining() -> Any:
        db = Database(settings)
        try:
            async with db.sessionmaker() as session:
                return await session.scalar(select(func.count()).select_from(IdempotencyRecord))
        finally:
            await db.dispose()

    asyncio.run(prepare())
    result = runner.invoke(cli, ["idempotency", "purge"])
    assert result.exit_code == 0, result.output
    assert "deleted 3 expired idempotency record(s)" in result.output
    assert asyncio.run(remaining()) == 2
