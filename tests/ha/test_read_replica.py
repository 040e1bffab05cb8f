"""Read-your-writes on a real read replica: a member never reads older than their own write.

A private primary with a streaming standby whose replay is held back on purpose
(`recovery_min_apply_delay`, so the replica is always about that far behind, as a loaded
or distant replica is). A real `banking serve` has `DATABASE_READ_URL` on the standby.

- A member's transfer followed at once by their history and their statement (both read
  from the replica when it may) always shows that transfer: right after a write the read
  runs on the primary, because the replica has not replayed the write's WAL position.
  With two API processes sharing Redis, a write through one and a read through the other
  behave the same.
- Once the window has passed and the replica has replayed, the same reads run on the
  replica (counted in `banking_replica_reads_total`) and are still up to date.
- The control: a server with read-your-writes off (`READ_YOUR_WRITES_S=0`) answers the
  same write-then-read with the replica's older state, so the test can tell.
- `banking_replica_lag_seconds` is exported, and readiness reports a replica behind
  `READ_REPLICA_MAX_LAG_S` while staying ready.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from banking.app import create_app
from banking.client import BankingClient, NotFound
from tests.conftest import make_settings
from tests.ha.cluster import Cluster, make_root, require_postgres_binaries
from tests.ha.load import PASSWORD, migrate
from tests.server import Server

APPLY_DELAY_S = 2.5
WINDOW_S = 5.0
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()


@dataclass
class Replicated:
    cluster: Cluster
    primary_url: str
    replica_url: str


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    require_postgres_binaries()
    root = make_root()
    cluster = Cluster(root)
    try:
        cluster.build(synchronous=False)
        standby = cluster.standby
        standby.psql_value(
            f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(APPLY_DELAY_S * 1000)}ms'"
        )
        standby.psql_value("SELECT pg_reload_conf()")
        primary_url = cluster.primary.url("bank")
        migrate(primary_url)
        yield Replicated(cluster, primary_url, standby.url("bank"))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _server(
    replicated: Replicated, log_dir: Path, name: str, *, workers: int = 1, **env: str
) -> Server:
    metrics_dir = log_dir / f"metrics-{name}"
    metrics_dir.mkdir()
    return Server(
        replicated.primary_url,
        workers=workers,
        log_path=log_dir / f"{name}.log",
        DATABASE_READ_URL=replicated.replica_url,
        READ_REPLICA_MAX_LAG_S="60",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        **env,
    )


def _reads(server: Server) -> dict[tuple[str, str], float]:
    body = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(body):
        if family.name == "banking_replica_reads":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["target"], sample.labels["reason"])
                    counts[key] = counts.get(key, 0) + sample.value
    return counts


def _month() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m")


def _member(bank: BankingClient) -> tuple[str, str, str]:
    email = f"replica-{uuid.uuid4().hex[:10]}@example.com"
    bank.signup(email, PASSWORD, first_name="Rey", last_name="Plica", date_of_birth="1980-01-01")
    bank.login(email, PASSWORD)
    source = bank.open_account("checking", "USD")
    target = bank.open_account("savings", "USD")
    bank.deposit(source.id, 1_000_000)
    return email, source.id, target.id


def test_a_member_reads_their_own_write_at_once_from_a_lagging_replica(
    replicated: Replicated, tmp_path: Path
) -> None:
    server = _server(replicated, tmp_path, "server", READ_YOUR_WRITES_S=str(WINDOW_S))
    with server, BankingClient(server.base_url) as bank:
        _email, source_id, target_id = _member(bank)
        ready = httpx.get(f"{server.base_url}/v1/health/ready", timeout=10).json()
        assert ready["checks"]["replica"] == "ok", ready
        _write_then_read(bank, bank, source_id, target_id)
        routed = _reads(server)
        # Most of those reads came within APPLY_DELAY_S of their write (all of them but on
        # a very loaded machine): the replica had not replayed it, the primary answered.
        assert routed.get(("primary", "own_write"), 0) >= ROUNDS // 2, routed

        # The window passes and the replica replays: the same reads go to the replica.
        time.sleep(WINDOW_S + APPLY_DELAY_S)
        history = bank.transactions_page(target_id, limit=50)
        assert len(history.items) == ROUNDS
        assert bank.statement(target_id, _month()).closing_balance == RECEIVED
        after = _reads(server)
        assert after.get(("replica", "replica"), 0) >= routed.get(("replica", "replica"), 0) + 2
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=10).text
        assert "banking_replica_lag_seconds" in metrics


@pytest.mark.skipif(not TEST_REDIS_URL, reason="marks shared through Redis need TEST_REDIS_URL")
def test_a_write_on_one_process_is_seen_by_a_read_on_another(
    replicated: Replicated, tmp_path: Path
) -> None:
    """Two API processes behind one balancer share the marks through Redis: the member
    writes through one and reads at once through the other."""
    env = {"READ_YOUR_WRITES_S": str(WINDOW_S), "REDIS_URL": TEST_REDIS_URL}
    with (
        _server(replicated, tmp_path, "writer", **env) as writer_server,
        _server(replicated, tmp_path, "reader", **env) as reader_server,
        BankingClient(writer_server.base_url) as writer,
        BankingClient(reader_server.base_url) as reader,
    ):
        email, source_id, target_id = _member(writer)
        reader.login(email, PASSWORD)
        _write_then_read(writer, reader, source_id, target_id)
        routed = _reads(reader_server)
        assert routed.get(("primary", "own_write"), 0) >= ROUNDS // 2, routed


ROUNDS = 6
RECEIVED = sum(range(1, ROUNDS + 1))


def _write_then_read(
    writer: BankingClient, reader: BankingClient, source_id: str, target_id: str
) -> None:
    """ROUNDS transfers, each followed at once by the member's history and statement."""
    received = 0
    for round_number in range(1, ROUNDS + 1):
        movement = writer.transfer(source_id, round_number, target_account_id=target_id)
        received += round_number
        history = reader.transactions_page(target_id, limit=50)
        assert movement.id in {item.id for item in history.items}, (
            f"round {round_number}: the member's own transfer is missing from the history"
        )
        statement = reader.statement(target_id, _month())
        assert statement.closing_balance == received, f"round {round_number}: stale"


def test_without_read_your_writes_the_replica_answers_an_older_state(
    replicated: Replicated, tmp_path: Path
) -> None:
    """The control: the replica really is behind, so the test above could fail."""
    with (
        _server(replicated, tmp_path, "control", READ_YOUR_WRITES_S="0") as server,
        BankingClient(server.base_url) as bank,
    ):
        _email, source_id, target_id = _member(bank)
        stale = 0
        for round_number in range(1, 4):
            movement = bank.transfer(source_id, round_number, target_account_id=target_id)
            try:
                history = bank.transactions_page(target_id, limit=50)
            except NotFound:
                stale += 1  # the replica does not even have the member's new account yet
                continue
            if movement.id not in {item.id for item in history.items}:
                stale += 1
        assert stale >= 1, "the replica was never behind: the read-your-writes test proves nothing"
        assert _reads(server).get(("replica", "replica"), 0) >= 3


def test_readiness_reports_a_replica_behind_the_limit_and_stays_ready(
    replicated: Replicated, tmp_path: Path
) -> None:
    settings = make_settings(
        replicated.primary_url,
        database_read_url=replicated.replica_url,
        read_replica_max_lag_s=0.5,
    )

    async def scenario() -> dict[str, object]:
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                # A write on the primary: the replica holds it back APPLY_DELAY_S.
                signup = await http.post(
                    "/v1/auth/signup",
                    json={
                        "email": f"lag-{uuid.uuid4().hex[:10]}@example.com",
                        "password": PASSWORD,
                        "first_name": "Lag",
                        "last_name": "Check",
                        "date_of_birth": "1980-01-01",
                    },
                )
                assert signup.status_code == 201, signup.text
                # Within APPLY_DELAY_S the standby has received the write and holds it back.
                deadline = time.monotonic() + APPLY_DELAY_S
                while True:
                    ready = await http.get("/v1/health/ready")
                    assert ready.status_code == 200, ready.text
                    body: dict[str, object] = ready.json()
                    replica = str(body["checks"]["replica"])  # type: ignore[index]
                    if replica != "ok" or time.monotonic() > deadline:
                        return body
                    await asyncio.sleep(0.05)

    body = asyncio.run(scenario())
    replica_state = str(body["checks"]["replica"])  # type: ignore[index]
    assert replica_state.startswith("behind by "), body
    assert "reads use the primary" in replica_state
