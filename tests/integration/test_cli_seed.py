"""`banking seed` as a command: seeds an empty database once, prints the logins once.

Synchronous: the CLI runs its own event loop."""

from __future__ import annotations

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
