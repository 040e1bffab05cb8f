"""`banking seed` as a command: seeds an empty database once, prints the logins once.

Synchronous: the CLI runs its own event loop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from banking.cli import app as cli
from banking.core.config import get_settings
from tests.conftest import TEST_SECRETS

MEMBER_PASSWORD = "Granite-Meadow-Beacon-77"


@pytest.fixture
def runner(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("DB_POOL_SIZE", "2")
    monkeypatch.delenv("BANKING_SEED_PASSWORD", raising=False)
    for name, value in TEST_SECRETS.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


class TestSeedCommand:
    def test_an_empty_database_is_seeded_and_the_logins_printed_once(
        self, runner: CliRunner
    ) -> None:
        args = ["seed", "--users", "2", "--months", "1", "--password", MEMBER_PASSWORD]
        first = runner.invoke(cli, args)
        assert first.exit_code == 0, first.output
        assert "seeded 2 people" in first.output
        for text in (MEMBER_PASSWORD, "support@example.com", "admin@example.com"):
            assert text in first.output

        again = runner.invoke(cli, [*args, "--if-empty"])
        assert again.exit_code == 0, again.output
        assert "not seeding" in again.output
        assert MEMBER_PASSWORD not in again.output

        refused = runner.invoke(cli, args)
        assert refused.exit_code == 1
        assert "has users already" in refused.output

        verified = runner.invoke(cli, ["ledger", "verify"])
        assert verified.exit_code == 0, verified.output
        assert "ledger ok" in verified.output


class TestShowLogins:
    def test_the_logins_of_the_last_seeding_are_shown_again_without_touching_the_data(
        self, runner: CliRunner, tmp_path: Path
    ) -> None:
        args = ["seed", "--users", "2", "--months", "1", "--password", MEMBER_PASSWORD]
        first = runner.invoke(cli, args)
        assert first.exit_code == 0, first.output
        kept = tmp_path / "var" / "seed-logins.json"
        assert kept.stat().st_mode & 0o777 == 0o600
        staff_passwords = [row["password"] for row in json.loads(kept.read_text())["logins"][1:]]
        assert len(staff_passwords) == 2

        shown = runner.invoke(cli, ["seed", "--show-logins"])
        assert shown.exit_code == 0, shown.output
        for text in (MEMBER_PASSWORD, "support@example.com", "admin@example.com"):
            assert text in shown.output
        for password in staff_passwords:
            assert password in shown.output
        assert "seeded 2 people" not in shown.output
        # Nothing was reseeded: the database still refuses a second seeding as before.
        assert runner.invoke(cli, args).exit_code == 1

    def test_without_a_seeding_there_is_nothing_to_show(self, runner: CliRunner) -> None:
        shown = runner.invoke(cli, ["seed", "--show-logins"])
        assert shown.exit_code == 1
        assert "no seeded logins" in shown.output

    def test_the_logins_of_another_database_are_not_shown(
        self, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert runner.invoke(cli, ["seed", "--users", "1", "--months", "1"]).exit_code == 0
        monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/other.db")
        get_settings.cache_clear()
        shown = runner.invoke(cli, ["seed", "--show-logins"])
        assert shown.exit_code == 1
        assert "belongs to another database" in shown.output

    def test_production_never_keeps_or_shows_them(
        self, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("APP_ENV", "prod")
        for name in TEST_SECRETS:
            monkeypatch.setenv(name.upper(), f"production-{name}-0123456789abcdef0123456789")
        get_settings.cache_clear()
        shown = runner.invoke(cli, ["seed", "--show-logins"])
        assert shown.exit_code == 2
        assert "never kept in production" in shown.output
