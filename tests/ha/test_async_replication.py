"""Why the documented setup is synchronous: with an asynchronous standby a failover loses
transfers that clients were told had succeeded.

The same two-node cluster as test_failover.py but without `synchronous_standby_names`.
Under load replication is cut (what a network partition or a standby that falls behind
does), the primary keeps acknowledging transfers it alone holds,
then its machine is lost (SIGKILL to all its processes) and the standby is promoted.
Acknowledged transfers are then missing from the new primary; the ledger itself is
consistent (an earlier state), so `banking ledger verify` passes and cannot tell.
docs/deployment.md describes this.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import asyncpg

from tests.ha.cluster import Cluster, make_root, require_postgres_binaries
from tests.ha.load import Load, cli_verify, migrate, seed
from tests.server import Server

LAG_S = 1.0


async def _failover_with_lag(cluster: Cluster, load: Load) -> float:
    await load.warm_up()
    # Cut replication: the standby keeps what it received and stops receiving (its WAL
    # receiver restarts towards an address where nothing listens).
    standby = cluster.standby
    standby.psql_value("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'")
    standby.psql_value("SELECT pg_reload_conf()")
    await asyncio.sleep(LAG_S)
    killed_at = time.monotonic()
    await asyncio.to_thread(cluster.primary.crash)
    await asyncio.to_thread(cluster.standby.promote)
    deadline = time.monotonic() + 15
    while load.first_ack_after(killed_at) is None:
        assert time.monotonic() < deadline, "no transfer went through after the failover"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    return killed_at


def test_an_asynchronous_standby_loses_acknowledged_transfers_on_failover(
    tmp_path: Path,
) -> None:
    require_postgres_binaries()
    root = make_root()
    cluster = Cluster(root)
    server: Server | None = None
    try:
        cluster.build(synchronous=False)
        migrate(cluster.url())
        server = Server(cluster.url(), workers=2, log_path=tmp_path / "server.log")
        server.start()

        async def main() -> tuple[Load, float]:
            assert server is not None
            customers = await seed(server.base_url, 4)
            load = Load(server.base_url, customers, clients=8)
            scenario = asyncio.ensure_future(_failover_with_lag(cluster, load))
            await load.run_until(scenario)
            return load, scenario.result()

        load, killed_at = asyncio.run(main())

        async def missing() -> int:
            connection = await asyncpg.connect(cluster.standby.url("bank"))
            try:
                found = await connection.fetchval(
                    "SELECT count(*) FROM journal_entry WHERE id::text = ANY($1::text[])",
                    [o.entry_id for o in load.acknowledged],
                )
            finally:
                await connection.close()
            return len(load.acknowledged) - int(found)

        lost = asyncio.run(missing())
        during_lag = sum(
            1 for o in load.acknowledged if killed_at - LAG_S <= o.done_at <= killed_at
        )
        print(
            f"\nasynchronous standby: {lost} of {len(load.acknowledged)} acknowledged transfers "
            f"are not on the new primary ({during_lag} were acknowledged in the {LAG_S:.0f}s "
            "replication was cut)"
        )
        assert lost > 0, "an asynchronous failover after lag lost nothing: not demonstrated"
        # The new primary holds an earlier, consistent state: verify cannot see the loss.
        cli_verify(cluster.url())
    finally:
        if server is not None:
            server.stop()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
