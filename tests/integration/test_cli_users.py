"""`banking users create-admin`, `users set-role` and `audit verify` against a real database.

These tests are synchronous: the CLI runs its own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from banking.audit.models import AuditEvent
from banking.cli import app as cli
from banking.core.config import get_settings
from banking.core.db import Database
from banking.identity.models import User
from tests.conftest import TEST_SECRETS, make_settings

ADMIN_PASSWORD = "Granite-Meadow-Beacon-58"


@pytest.fixture
def runner(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.delenv("BANKING_ADMIN_PASSWORD", raising=False)
    for name, value in TEST_SECRETS.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _run_db(database_url: str, work):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        db = Database(make_settings(database_url))
        try:
            async with db.sessionmaker() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _role_of(database_url: str, email: str) -> str | None:
    async def work(session):  # type: ignore[no-untyped-def]
        return (
            await session.execute(select(User.role).where(User.email == email))
        ).scalar_one_or_none()

    role: str | None = _run_db(database_url, work)
    return role


class TestCreateAdmin:
    def test_create_admin_reads_the_password_from_stdin(
        self, runner: CliRunner, database_url: str
    ) -> None:
        result = runner.invoke(
            cli,
            ["users", "create-admin", "--email", "Root@Example.com", "--password-stdin"],
            input=ADMIN_PASSWORD + "\n",
        )
        assert result.exit_code == 0, result.output
        assert "created admin root@example.com" in result.output
        assert ADMIN_PASSWORD not in result.output
        assert _role_of(database_url, "root@example.com") == "admin"

    def test_create_admin_reads_the_password_from_the_environment(
        self, runner: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("BANKING_ADMIN_PASSWORD", ADMIN_PASSWORD)
        result = runner.invoke(cli, ["users", "create-admin", "--email", "ops@example.com"])
        assert result.exit_code == 0, result.output
        assert _role_of(database_url, "ops@example.com") == "admin"

    def test_create_admin_prompts_when_nothing_else_is_given(
        self, runner: CliRunner, database_url: str
    ) -> None:
        result = runner.invoke(
            cli,
            ["users", "create-admin", "--email", "prompt@example.com"],
            input=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n",
        )
        assert result.exit_code == 0, result.output
        assert _role_of(database_url, "prompt@example.com") == "admin"

    @pytest.mark.parametrize("password", ["short", "password1234", "Admin-Harbour-Light-42"])
    def test_create_admin_enforces_the_password_policy(
        self, runner: CliRunner, database_url: str, password: str
    ) -> None:
        result = runner.invoke(
            cli,
            ["users", "create-admin", "--email", "admin@example.com", "--password-stdin"],
            input=password + "\n",
        )
        assert result.exit_code == 1
        assert "refused" in result.output
        assert _role_of(database_url, "admin@example.com") is None

    def test_create_admin_refuses_a_taken_email_and_a_bad_one(self, runner: CliRunner) -> None:
        args = ["users", "create-admin", "--email", "dup@example.com", "--password-stdin"]
        assert runner.invoke(cli, args, input=ADMIN_PASSWORD + "\n").exit_code == 0
        assert runner.invoke(cli, args, input=ADMIN_PASSWORD + "\n").exit_code == 1
        bad = runner.invoke(
            cli, ["users", "create-admin", "--email", "nope", "--password-stdin"], input="x\n"
        )
        assert bad.exit_code == 2


class TestSetRole:
    def test_set_role_changes_the_role(self, runner: CliRunner, database_url: str) -> None:
        args = ["users", "create-admin", "--email", "staff@example.com", "--password-stdin"]
        runner.invoke(cli, args, input=ADMIN_PASSWORD + "\n")
        result = runner.invoke(cli, ["users", "set-role", "STAFF@example.com", "support"])
        assert result.exit_code == 0, result.output
        assert _role_of(database_url, "staff@example.com") == "support"

    def test_set_role_refuses_unknown_roles_and_users(self, runner: CliRunner) -> None:
        assert runner.invoke(cli, ["users", "set-role", "a@example.com", "root"]).exit_code == 2
        assert runner.invoke(cli, ["users", "set-role", "a@example.com", "admin"]).exit_code == 1


class TestAuditVerify:
    def test_verify_passes_then_finds_an_edited_row(
        self, runner: CliRunner, database_url: str
    ) -> None:
        for email in ("one@example.com", "two@example.com"):
            runner.invoke(
                cli,
                ["users", "create-admin", "--email", email, "--password-stdin"],
                input=ADMIN_PASSWORD + "\n",
            )
        runner.invoke(cli, ["users", "set-role", "two@example.com", "support"])
        ok = runner.invoke(cli, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "audit chain ok: 3 rows verified, 0 unsealed" in ok.output

        async def tamper(session):  # type: ignore[no-untyped-def]
            first = (
                await session.execute(select(AuditEvent.id).order_by(AuditEvent.id).limit(1))
            ).scalar_one()
            await session.execute(
                update(AuditEvent).where(AuditEvent.id == first).values(details='{"role":"member"}')
            )
            await session.commit()
            return first

        edited = _run_db(database_url, tamper)
        broken = runner.invoke(cli, ["audit", "verify"])
        assert broken.exit_code == 1
        assert f"audit chain broken at row {edited}" in broken.output
