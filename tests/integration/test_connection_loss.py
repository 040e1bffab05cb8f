"""A lost database connection: recognised, answered 503 `database_unavailable`, never
reused, never a half-written movement."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection

from banking.core.db import is_connection_lost
from banking.core.prepared import Prepared
from banking.ledger import writer as ledger_writer
from banking.ledger.verify import verify_ledger
from tests.factories import make_member, open_account


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError.instance(
        "SELECT 1", [], orig, Exception, connection_invalidated=invalidated
    )


class TestLostConnectionsAreRecognised:
    @pytest.mark.parametrize(
        "error",
        [
            ConnectionRefusedError(111, "refused"),
            ConnectionResetError(104, "reset"),
            TimeoutError(),
            socket.gaierror(-2, "Name or service not known"),
            asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
            asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"),
            asyncpg.exceptions.InterfaceError("cannot call fetch(): connection is closed"),
            _wrapped(RuntimeError("gone"), invalidated=True),
            _wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")),
            sa_exc.TimeoutError("QueuePool limit reached"),
        ],
        ids=lambda error: type(error).__name__,
    )
    def test_errors_of_a_lost_or_unreachable_server_are_lost_connections(
        self, error: BaseException
    ) -> None:
        assert is_connection_lost(error)

    def test_an_error_caused_by_a_lost_connection_is_a_lost_connection(self) -> None:
        error = RuntimeError("wrapper")
        error.__cause__ = ConnectionResetError(104, "reset")
        assert is_connection_lost(error)

    @pytest.mark.parametrize(
        "error",
        [
            asyncpg.exceptions.UniqueViolationError("duplicate key"),
            asyncpg.exceptions.SerializationError("could not serialize"),
            _wrapped(asyncpg.exceptions.UndefinedTableError("no such table")),
            asyncpg.exceptions.InterfaceError("cannot perform operation: another operation"),
            FileNotFoundError(2, "missing"),
            ValueError("bad"),
        ],
        ids=lambda error: type(error).__name__,
    )
    def test_other_errors_are_not(self, error: BaseException) -> None:
        assert not is_connection_lost(error)


def _postgres_only(app: FastAPI) -> None:
    if app.state.db.is_sqlite:
        pytest.skip("kills PostgreSQL backends; run with TEST_DATABASE_URL")


def _driver_url(app: FastAPI) -> str:
    return str(app.state.settings.database_url).replace("postgresql+asyncpg://", "postgresql://")


# Ends the current backend: its connection dies inside the open transaction.
_TERMINATE_SELF = Prepared(text("SELECT pg_terminate_backend(pg_backend_pid())"))


class TestConnectionDeathMidTransaction:
    async def test_movement_whose_connection_dies_before_commit_is_a_503_and_not_written(
        self, app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _postgres_only(app)
        member = await make_member(client)
        source = await open_account(client, member, balance_minor=100_00)
        target = await open_account(client, member)
        original = ledger_writer.Writer.run
        killed: list[bool] = []

        async def dying_run(self: Any, fn: Callable[[Connection], Any]) -> Any:
            def movement_then_death(connection: Connection) -> Any:
                value = fn(connection)
                if not killed:
                    killed.append(True)
                    # Everything is written but not committed: the connection dies now.
                    _TERMINATE_SELF.first(connection)
                return value

            return await original(self, movement_then_death)

        monkeypatch.setattr(ledger_writer.Writer, "run", dying_run)
        key = uuid.uuid4().hex
        body = {
            "source_account_id": source["id"],
            "target_account_id": target["id"],
            "amount": 25_00,
        }
        headers = {**member.headers, "Idempotency-Key": key}

        lost = await client.post("/v1/transfers", json=body, headers=headers)
        assert killed
        assert lost.status_code == 503, lost.text
        assert lost.headers["content-type"] == "application/problem+json"
        assert lost.json()["code"] == "database_unavailable"
        assert int(lost.headers["retry-after"]) >= 1
        for account, expected in ((source, 100_00), (target, 0)):
            balance = await client.get(
                f"/v1/accounts/{account['id']}/balance?verify=true", headers=member.headers
            )
            assert balance.status_code == 200, balance.text
            assert balance.json()["balance"] == expected
            assert balance.json()["consistent"] is True

        # The retry with the same key runs on a fresh connection and executes once.
        retried = await client.post("/v1/transfers", json=body, headers=headers)
        assert retried.status_code == 201, retried.text
        replayed = await client.post("/v1/transfers", json=body, headers=headers)
        assert replayed.status_code == 201
        assert replayed.json()["id"] == retried.json()["id"]
        balance = await client.get(f"/v1/accounts/{source['id']}/balance", headers=member.headers)
        assert balance.json()["balance"] == 75_00
        async with app.state.db.sessionmaker() as session:
            report = await verify_ledger(session)
        assert report.ok, report

    async def test_every_pool_recovers_after_all_its_connections_are_killed(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        """What a server restart does to idle pooled connections: none of them is reused."""
        _postgres_only(app)
        member = await make_member(client)
        source = await open_account(client, member, balance_minor=50_00)
        target = await open_account(client, member)

        async def transfer(amount: int) -> httpx.Response:
            return await client.post(
                "/v1/transfers",
                json={
                    "source_account_id": source["id"],
                    "target_account_id": target["id"],
                    "amount": amount,
                },
                headers={**member.headers, "Idempotency-Key": uuid.uuid4().hex},
            )

        # Fill the pools (request, read, ledger) with live connections first.
        assert (await transfer(1_00)).status_code == 201
        killer = await asyncpg.connect(_driver_url(app))
        try:
            killed = await killer.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await killer.close()
        assert killed >= 2
        await asyncio.sleep(0.2)  # the driver sees the closed sockets

        balance = await client.get(f"/v1/accounts/{source['id']}/balance", headers=member.headers)
        assert balance.status_code == 200, balance.text
        assert (await transfer(2_00)).status_code == 201
        accounts = await client.get("/v1/accounts", headers=member.headers)
        assert accounts.status_code == 200, accounts.text
        ready = await client.get("/v1/health/ready")
        assert ready.status_code == 200, ready.text
        balance = await client.get(f"/v1/accounts/{source['id']}/balance", headers=member.headers)
        assert balance.json()["balance"] == 47_00
