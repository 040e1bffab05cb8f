"""`banking cards rotate-key`, `banking holds expire` and `banking ledger verify` with
card holds, against a real database. Synchronous: the CLI runs its own event loop."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from banking.app import create_app
from banking.cli import app as cli
from banking.core.config import get_settings
from tests.cards_support import approved, funded_card
from tests.conftest import TEST_SECRETS, make_settings
from tests.factories import make_member

NEW_KEY = "cli-rotated-card-key-0123456789abcdef0123456789abcdef"


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


def _card_with_a_hold(database_url: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        app = create_app(make_settings(database_url))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                member = await make_member(client)
                _, card = await funded_card(client, member)
                await approved(client, card, 10_00)
                return card

    return asyncio.run(main())


def test_rotate_key_then_verify_and_expire(
    runner: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _card_with_a_hold(database_url)
    verified = runner.invoke(cli, ["ledger", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "ledger ok" in verified.output

    monkeypatch.setenv("CARD_ENCRYPTION_KEY", NEW_KEY)
    monkeypatch.setenv("CARD_ENCRYPTION_PREVIOUS_KEYS", TEST_SECRETS["card_encryption_key"])
    get_settings.cache_clear()
    rotated = runner.invoke(cli, ["cards", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 1 card(s)" in rotated.output
    assert "1 card(s) still verify their CVV with a retired key" in rotated.output

    # Without the old key nothing is left to decrypt: a second run has nothing to do.
    monkeypatch.delenv("CARD_ENCRYPTION_PREVIOUS_KEYS")
    get_settings.cache_clear()
    again = runner.invoke(cli, ["cards", "rotate-key"])
    assert again.exit_code == 0, again.output
    assert "re-encrypted 0 card(s)" in again.output

    expired = runner.invoke(cli, ["holds", "expire"])
    assert expired.exit_code == 0, expired.output
    assert "released 0 expired hold(s)" in expired.output


def test_rotate_key_without_the_old_key_fails_loudly(
    runner: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _card_with_a_hold(database_url)
    monkeypatch.setenv("CARD_ENCRYPTION_KEY", NEW_KEY)
    get_settings.cache_clear()
    result = runner.invoke(cli, ["cards", "rotate-key"])
    assert result.exit_code == 1
    assert "cannot decrypt card data" in result.output


def test_a_command_closes_every_connection_it_opened(runner: CliRunner, database_url: str) -> None:
    """`holds expire` reads through the read pool and writes through the ledger's writer:
    both are closed when the command ends, not left for the garbage collector (which
    warns of an unclosed PostgreSQL connection, at some later moment)."""
    _card_with_a_hold(database_url)
    gc.collect()
    unclosed: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda raised: unclosed.append(f"{raised.exc_value}")
    try:
        expired = runner.invoke(cli, ["holds", "expire"])
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert expired.exit_code == 0, expired.output
    assert unclosed == []
