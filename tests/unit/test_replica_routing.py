"""Where a read runs when a replica is configured (core/replica.py), without a server:
the decisions from what the process knows. tests/ha/test_read_replica.py runs them
against a real lagging standby."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from banking.core.replica import UNKNOWN_LSN, Replica, parse_lsn
from tests.conftest import make_settings

# Nothing listens on port 1: a replica query there fails at once.
NOWHERE = "postgresql://postgres@127.0.0.1:1/bank"


def _replica(**overrides: object) -> Replica:
    settings = make_settings(
        "postgresql://postgres@127.0.0.1:1/bank",
        database_read_url=NOWHERE,
        db_connect_timeout_s=1,
        **overrides,
    )
    db = SimpleNamespace(is_sqlite=False, sessionmaker=None)
    return Replica(db, settings)  # type: ignore[arg-type]


def test_lsn_text_becomes_a_number() -> None:
    assert parse_lsn("0/0") == 0
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert parse_lsn(None) == 0
    assert parse_lsn("FFFFFFFF/FFFFFFFF") == UNKNOWN_LSN


@pytest.mark.anyio
class TestRoute:
    async def test_a_caught_up_replica_serves_a_member_without_recent_writes(self) -> None:
        replica = _replica()
        replica.lag_s = 0.2
        assert await replica.route("member") == ("replica", "replica")

    async def test_an_unmeasured_or_lagging_replica_sends_reads_to_the_primary(self) -> None:
        replica = _replica(read_replica_max_lag_s=5)
        assert await replica.route("member") == ("primary", "replica_unreachable")
        replica.lag_s = 5.5
        assert await replica.route("member") == ("primary", "replica_behind")

    async def test_a_write_the_replica_has_replayed_lets_the_member_read_it(self) -> None:
        replica = _replica()
        replica.lag_s = 0.0
        replica.replayed_lsn = 200
        replica._marks["member"] = (150, float("inf"))
        assert await replica.route("member") == ("replica", "replica")

    async def test_a_write_not_yet_replayed_keeps_the_member_on_the_primary(self) -> None:
        replica = _replica()
        replica.lag_s = 0.0
        replica.replayed_lsn = 100
        replica._marks["member"] = (150, float("inf"))
        # The replica cannot be asked (nothing listens): the primary answers.
        assert await replica.route("member") == ("primary", "replica_unreachable")
        assert await replica.route("someone-else") == ("replica", "replica")
        await replica.close()

    async def test_an_expired_mark_is_forgotten(self) -> None:
        replica = _replica()
        replica.lag_s = 0.0
        replica._marks["member"] = (UNKNOWN_LSN, 0.0)
        assert await replica.route("member") == ("replica", "replica")
        assert "member" not in replica._marks

    async def test_no_window_means_no_check(self) -> None:
        replica = _replica(read_your_writes_s=0)
        replica.lag_s = 0.0
        await replica.mark_write("member")
        assert replica._marks == {}
        assert await replica.route("member") == ("replica", "replica")


def test_a_sqlite_primary_is_refused() -> None:
    settings = make_settings("sqlite+aiosqlite:///x.db", database_read_url=NOWHERE)
    with pytest.raises(RuntimeError, match="PostgreSQL DATABASE_URL"):
        Replica(SimpleNamespace(is_sqlite=True), settings)  # type: ignore[arg-type]


class _Conflict(Exception):
    sqlstate = "40001"

    def __str__(self) -> str:
        return "canceling statement due to conflict with recovery"


@pytest.mark.anyio
async def test_a_read_cancelled_by_the_replica_answers_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx
    from fastapi import FastAPI
    from sqlalchemy.exc import DBAPIError

    from banking.core import replica as replica_module
    from banking.core.errors import install_error_handlers

    replica = _replica()
    replica.lag_s = 0.0  # caught up: the read goes to the replica
    # The replica's connection is not needed to see the mapping: the read itself fails
    # as a standby fails it when replay cancels it.
    monkeypatch.setattr(replica_module, "on_connection", lambda _engine, fn: fn(None))

    def cancelled(_connection: object) -> None:
        raise DBAPIError("SELECT 1", {}, _Conflict())

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/history")
    async def history() -> None:
        await replica.run("member", cancelled)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/history")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "database_unavailable"
    await replica.close()
