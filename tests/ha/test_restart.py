"""The service recovers by itself when its PostgreSQL server crashes and starts again.

A private PostgreSQL 15 server, a real `banking serve` process (2 workers) on it, 8
clients sending transfers; the postmaster is killed with SIGKILL under that load and
started again. Without a restart of the API, transfers, reads and account opening answer
again within seconds, readiness is 503 while the server is down, and nothing
acknowledged is lost or doubled.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ha.cluster import Node, make_root, require_postgres_binaries
from tests.ha.load import Load, check_ledger, cli_verify, migrate, seed
from tests.server import Server

RECOVERY_LIMIT_S = 10.0
DOWN_FOR_S = 2.0


@pytest.fixture
def node() -> Iterator[Node]:
    require_postgres_binaries()
    root = make_root()
    node = Node(root, "single").init_primary()
    node.start()
    try:
        node.psql_value("CREATE DATABASE bank")
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _scenario(server: Server, node: Node, load: Load) -> dict[str, float]:
    figures: dict[str, float] = {}
    await load.warm_up()
    killed_at = time.monotonic()
    await asyncio.to_thread(node.kill)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        await asyncio.sleep(DOWN_FOR_S / 2)
        ready = await http.get("/v1/health/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"]["database"]
        await asyncio.sleep(DOWN_FOR_S / 2)
        await asyncio.to_thread(node.start)
        started_at = time.monotonic()
        figures["database_down_s"] = started_at - killed_at
        deadline = started_at + RECOVERY_LIMIT_S
        while (await http.get("/v1/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, "readiness did not come back"
            await asyncio.sleep(0.1)
        figures["ready_after_start_s"] = time.monotonic() - started_at
        while load.first_ack_after(started_at) is None:
            assert time.monotonic() < deadline, "no transfer went through after the restart"
            await asyncio.sleep(0.1)
        first = load.first_ack_after(started_at)
        assert first is not None
        figures["transfers_after_start_s"] = first - started_at
        figures["unavailable_s"] = load.unavailable_s(killed_at)
    await asyncio.sleep(1.0)  # the load goes on for a moment on the restarted server
    return figures


async def _check_the_api_answers(base_url: str, email: str) -> None:
    """What stayed broken before: account opening and the balance read."""
    from banking.client import AsyncBankingClient
    from tests.ha.load import PASSWORD

    async with AsyncBankingClient(base_url, retries=0) as bank:
        await bank.login(email, PASSWORD)
        started = time.monotonic()
        account = await bank.open_account("savings", "USD")
        balance = await bank.balance(account.id)
        assert balance.balance == 0
        assert time.monotonic() - started < 2.0


def test_service_recovers_by_itself_after_the_database_restarts(node: Node, tmp_path: Path) -> None:
    url = node.url("bank")
    migrate(url)
    server = Server(url, workers=2, log_path=tmp_path / "server.log", DB_POOL_SIZE="8")
    server.start()
    try:

        async def main() -> tuple[Load, dict[str, float], list]:  # type: ignore[type-arg]
            customers = await seed(server.base_url, 4)
            load = Load(server.base_url, customers, clients=8)
            scenario = asyncio.ensure_future(_scenario(server, node, load))
            await load.run_until(scenario)
            await _check_the_api_answers(server.base_url, customers[0].email)
            return load, scenario.result(), customers

        load, figures, customers = asyncio.run(main())
        assert server.process is not None
        assert server.process.poll() is None, "the API process died"
    finally:
        server.stop()
    logs = (tmp_path / "server.log").read_text()
    asyncio.run(check_ledger(url, load, customers))
    verified = cli_verify(url)
    print(
        f"\nrestart: {len(load.acknowledged)} transfers acknowledged, "
        f"{len(load.failed)} failed for the caller after retries, "
        f"answers seen {dict(load.statuses)}, "
        f"transport errors {dict(load.transport_errors)}; "
        + ", ".join(f"{name} {value:.2f}" for name, value in figures.items())
        + f"\n{verified}"
    )
    assert figures["transfers_after_start_s"] < RECOVERY_LIMIT_S
    assert '"status": 500' not in logs, "a request answered 500"
