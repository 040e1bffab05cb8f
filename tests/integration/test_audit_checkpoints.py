"""`banking audit checkpoint` and `banking audit verify --checkpoint FILE` against a real
database: a chain cut short or rewritten after a checkpoint is found, and a checkpoint
file that was altered (or signed by no configured key) is refused.

These tests are synchronous: the CLI runs its own event loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from banking.audit import service as audit
from banking.audit.models import AuditEvent
from banking.cli import app as cli
from banking.core.config import get_settings
from banking.core.db import Database
from tests.conftest import TEST_SECRETS, make_settings


@pytest.fixture
def runner(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.delenv("AUDIT_PREVIOUS_KEYS", raising=False)
    for name, value in TEST_SECRETS.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _run_db(database_url: str, work: Callable[[AsyncSession], Any], **overrides: Any) -> Any:
    async def main() -> Any:
        db = Database(make_settings(database_url, **overrides))
        try:
            async with db.sessionmaker() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _add_events(database_url: str, count: int) -> None:
    async def work(session: AsyncSession) -> None:
        for number in range(count):
            await audit.record_alone(session, event_type="test.event", details={"n": number})

    _run_db(database_url, work)


def _checkpoint(runner: CliRunner, path: Path) -> dict[str, Any]:
    result = runner.invoke(cli, ["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    path.write_text(result.stdout)
    written: dict[str, Any] = json.loads(result.stdout)
    return written


def _verify(runner: CliRunner, path: Path | None = None) -> Any:
    arguments = ["audit", "verify"] + (["--checkpoint", str(path)] if path else [])
    return runner.invoke(cli, arguments)


class TestCheckpoints:
    def test_a_checkpoint_names_the_head_and_verifies_while_the_chain_grows(
        self, runner: CliRunner, database_url: str, tmp_path: Path
    ) -> None:
        _add_events(database_url, 4)
        path = tmp_path / "checkpoint.json"
        written = _checkpoint(runner, path)
        assert written["chain_seq"] == 4
        assert written["key_id"] == audit.AuditKey.from_secret(TEST_SECRETS["audit_key"]).key_id
        assert set(written) == {"version", "chain_seq", "hash", "created_at", "key_id", "signature"}

        async def head(session: AsyncSession) -> str | None:
            return (
                await session.execute(select(AuditEvent.hash).where(AuditEvent.chain_seq == 4))
            ).scalar_one()

        assert written["hash"] == _run_db(database_url, head)
        _add_events(database_url, 3)
        result = _verify(runner, path)
        assert result.exit_code == 0, result.output
        assert "7 rows verified" in result.output
        assert "matches the checkpoint at chain_seq 4" in result.output

    def test_a_chain_truncated_after_the_checkpoint_is_found(
        self, runner: CliRunner, database_url: str, tmp_path: Path
    ) -> None:
        _add_events(database_url, 5)
        path = tmp_path / "checkpoint.json"
        _checkpoint(runner, path)
        _add_events(database_url, 2)
        assert _verify(runner).exit_code == 0

        async def truncate(session: AsyncSession) -> None:
            await session.execute(delete(AuditEvent).where(AuditEvent.chain_seq >= 4))
            await session.commit()

        _run_db(database_url, truncate)
        # The shorter chain is a valid chain: only the checkpoint shows what is missing.
        plain = _verify(runner)
        assert plain.exit_code == 0, plain.output
        result = _verify(runner, path)
        assert result.exit_code == 1
        assert "chain truncated" in result.output
        assert "chain_seq 5, the chain ends at 3" in result.output

    def test_a_chain_rewritten_after_the_checkpoint_is_found(
        self, runner: CliRunner, database_url: str, tmp_path: Path
    ) -> None:
        _add_events(database_url, 3)
        path = tmp_path / "checkpoint.json"
        _checkpoint(runner, path)

        async def rewrite(session: AsyncSession) -> None:
            # Someone holding the key itself: edit a row and re-seal the chain properly.
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
            key = audit.AuditKey.from_secret(TEST_SECRETS["audit_key"])
            rows[1].details = '{"n":99}'
            prev_hash = audit.GENESIS_HASH
            for row in rows:
                row.prev_hash = prev_hash
                row.hash = audit.row_digest(prev_hash, row, key)
                prev_hash = row.hash
            await session.commit()

        _run_db(database_url, rewrite)
        assert _verify(runner).exit_code == 0
        result = _verify(runner, path)
        assert result.exit_code == 1
        assert "chain rewritten: the row at chain_seq 3" in result.output

    @pytest.mark.parametrize(
        "change",
        [
            {"chain_seq": 2},
            {"hash": "0" * 64},
            {"created_at": "2020-01-01T00:00:00+00:00"},
            {"signature": "f" * 64},
            {"key_id": "000000000000"},
            {"version": 2},
            {"chain_seq": "5"},
            {"extra": 1},
        ],
    )
    def test_an_altered_checkpoint_is_refused(
        self, runner: CliRunner, database_url: str, tmp_path: Path, change: dict[str, Any]
    ) -> None:
        _add_events(database_url, 5)
        path = tmp_path / "checkpoint.json"
        written = _checkpoint(runner, path)
        assert _verify(runner, path).exit_code == 0
        path.write_text(json.dumps({**written, **change}))
        result = _verify(runner, path)
        assert result.exit_code == 2
        assert "checkpoint refused" in result.output

    @pytest.mark.parametrize("content", ["", "not json", "[]", '{"chain_seq": 1}'])
    def test_a_file_that_is_no_checkpoint_is_refused(
        self, runner: CliRunner, tmp_path: Path, content: str
    ) -> None:
        path = tmp_path / "checkpoint.json"
        path.write_text(content)
        result = _verify(runner, path)
        assert result.exit_code == 2
        assert "checkpoint refused" in result.output

    def test_a_checkpoint_signed_by_a_retired_key_verifies_while_it_is_configured(
        self,
        runner: CliRunner,
        database_url: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        _add_events(database_url, 2)
        path = tmp_path / "checkpoint.json"
        _checkpoint(runner, path)
        monkeypatch.setenv("AUDIT_KEY", "rotated-audit-key-0123456789abcdef0123456789abcdef")
        monkeypatch.setenv("AUDIT_PREVIOUS_KEYS", TEST_SECRETS["audit_key"])
        get_settings.cache_clear()
        _add_events(database_url, 1)
        result = _verify(runner, path)
        assert result.exit_code == 0, result.output
        monkeypatch.delenv("AUDIT_PREVIOUS_KEYS")
        get_settings.cache_clear()
        refused = _verify(runner, path)
        assert refused.exit_code == 2
        assert "not configured" in refused.output

    def test_no_checkpoint_is_signed_for_a_broken_chain(
        self, runner: CliRunner, database_url: str
    ) -> None:
        _add_events(database_url, 3)
        assert _verify(runner).exit_code == 0

        async def tamper(session: AsyncSession) -> None:
            row = (
                await session.execute(select(AuditEvent).where(AuditEvent.chain_seq == 2))
            ).scalar_one()
            row.outcome = "failure"
            await session.commit()

        _run_db(database_url, tamper)
        result = runner.invoke(cli, ["audit", "checkpoint"])
        assert result.exit_code == 1
        assert "no checkpoint written" in result.output
        assert "signature" not in result.output
