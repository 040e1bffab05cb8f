"""Failover under load: the primary dies, the synchronous standby is promoted, nothing
acknowledged is lost and nothing runs twice.

A private two-node PostgreSQL 15 cluster: a primary and a streaming standby made with
`pg_basebackup`, named in the primary's `synchronous_standby_names` (with
`synchronous_commit=on` a COMMIT returns only once the standby has the WAL on disk). A
real `banking serve` process (2 workers) runs on the multi-host URL with
`target_session_attrs=read-write`; 16 clients send transfers with Idempotency-Keys
through the Python client, which retries 503 `database_unavailable` with the same key.
Mid-load the primary's postmaster gets SIGKILL and the standby is promoted (`pg_ctl
promote`, what Patroni or a managed service does); the load goes on, then stops. Then:
every acknowledged transfer is in the ledger exactly once, no key ran twice, the money is
conserved, and `banking ledger verify` and `banking audit verify` pass on the new primary.
The failed requests and the time without acknowledgements are printed; docs/deployment.md
quotes them. The three kill moments share one cluster, server and set of customers: after
each failover the former primary rejoins as the synchronous standby, and the next kill
hits the other node.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.ha.cluster import Cluster, make_root, require_postgres_binaries
from tests.ha.load import Customer, Load, check_ledger, cli_verify, migrate, seed
from tests.server import Server

CLIENTS = 16
# How long a failover manager takes to decide the primary is gone, compressed.
DETECTION_S = 0.5
RECOVERY_LIMIT_S = 15.0
LOAD_AFTER_S = 2.0


@dataclass
class Deployment:
    cluster: Cluster
    server: Server
    customers: list[Customer]
    log_path: Path
    keys: set[str] = field(default_factory=set)
    failovers: int = 0


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One cluster, one server and one set of customers for the three kill moments: after
    each failover the former primary rejoins as the standby and the next one kills the
    other node."""
    require_postgres_binaries()
    root = make_root()
    cluster = Cluster(root)
    log_path = tmp_path_factory.mktemp("failover") / "server.log"
    server: Server | None = None
    try:
        cluster.build()
        migrate(cluster.url())
        server = Server(cluster.url(), workers=2, log_path=log_path, DB_POOL_SIZE="8")
        server.start()
        customers = asyncio.run(seed(server.base_url, 4))
        yield Deployment(cluster, server, customers, log_path)
    finally:
        if server is not None:
            server.stop()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _failover(server: Server, cluster: Cluster, load: Load, kill_after_s: float) -> dict:  # type: ignore[type-arg]
    await load.warm_up()
    await asyncio.sleep(kill_after_s)
    killed_at = time.monotonic()
    await asyncio.to_thread(cluster.primary.kill)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        await asyncio.sleep(DETECTION_S)
        # No primary: one host refuses, the other is a standby (read-only).
        ready = await http.get("/v1/health/ready")
        assert ready.status_code == 503, ready.text
        await asyncio.to_thread(cluster.standby.promote)
        promoted_at = time.monotonic()
        deadline = promoted_at + RECOVERY_LIMIT_S
        while load.first_ack_after(promoted_at) is None:
            assert time.monotonic() < deadline, "no transfer went through after the failover"
            await asyncio.sleep(0.05)
        while (await http.get("/v1/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, "readiness did not come back after failover"
            await asyncio.sleep(0.1)
    first = load.first_ack_after(promoted_at)
    assert first is not None
    await asyncio.sleep(LOAD_AFTER_S)
    return {
        "acknowledged_before_kill": sum(1 for o in load.acknowledged if o.done_at <= killed_at),
        "promote_s": promoted_at - killed_at,
        "first_transfer_after_promote_s": first - promoted_at,
        "unavailable_s": load.unavailable_s(killed_at),
    }


@pytest.mark.parametrize("kill_after_s", [0.0, 0.6, 1.2], ids=["early", "mid", "late"])
def test_failover_loses_no_acknowledged_transfer_and_runs_none_twice(
    deployment: Deployment, kill_after_s: float
) -> None:
    cluster, server = deployment.cluster, deployment.server
    if deployment.failovers:
        cluster.rejoin()

    async def main() -> tuple[Load, dict]:  # type: ignore[type-arg]
        load = Load(server.base_url, deployment.customers, clients=CLIENTS)
        scenario = asyncio.ensure_future(_failover(server, cluster, load, kill_after_s))
        await load.run_until(scenario)
        return load, scenario.result()

    load, figures = asyncio.run(main())
    deployment.failovers += 1
    deployment.keys |= {outcome.key for outcome in load.outcomes}
    assert server.process is not None
    assert server.process.poll() is None, "the API process died"
    new_primary = cluster.standby.url("bank")
    asyncio.run(check_ledger(new_primary, load, deployment.customers, deployment.keys))
    verified = cli_verify(cluster.url())
    print(
        f"\nfailover ({kill_after_s}s into the load): {len(load.acknowledged)} transfers "
        f"acknowledged, {len(load.failed)} failed for the caller after retries, answers seen "
        f"{dict(load.statuses)}, "
        f"transport errors {dict(load.transport_errors)}; "
        + ", ".join(f"{name} {value:.2f}" for name, value in figures.items())
        + f"\n{verified}"
    )
    assert '"status": 500' not in deployment.log_path.read_text(), "a request answered 500"
