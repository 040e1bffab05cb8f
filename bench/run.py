"""`make bench`: transfers, balance reads and a hot account against a real server, next to
two baselines measured in the same run (a bare endpoint of the same framework, and pgbench
tpcb-like), for SQLite (1 worker) and PostgreSQL (1 and 2 workers). Transfers/s are also
measured without the ledger's outbox rows (bench/no_outbox/, the outbox's cost: target
ratio >= 0.85) and with one webhook endpoint subscribed to every event. One phase sends
transfers while 8 clients flood `POST /v1/auth/login` with wrong passwords, and reports
transfers/s as a ratio of the transfers/s measured alone in the same run (target >= 0.70).

The server is pinned to CPU 0 and the load generator to CPU 1 where the machine allows.
Results: bench/results/<timestamp>.json and .md, and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PASSWORD = "Bench-Harbour-Lantern-42"
SERVER_CPU, LOAD_CPU = "0", "1"
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRETS = {
    "JWT_SECRET": "bench-jwt-secret-0123456789abcdef0123456789abcdef",
    "CARD_ENCRYPTION_KEY": "bench-card-key-0123456789abcdef0123456789abcdef",
    "CARD_NETWORK_API_KEY": "bench-network-key-0123456789abcdef0123456789abcdef",
    "AUDIT_KEY": "bench-audit-key-0123456789abcdef0123456789abcdef",
}


def _taskset(cpu: str) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpu]
    return []


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path("/proc").glob("[0-9]*"):
        try:
            fields = (child / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in pids and int(child.name) not in pids:
            pids.append(int(child.name))
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            pass
    return total


def _rss_mb(pids: list[int]) -> list[float]:
    sizes = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(round(int(line.split()[1]) / 1024, 1))
        except OSError:
            pass
    return sizes


def load(
    base_url: str,
    kind: str,
    clients: int,
    duration_s: float,
    members: list[dict[str, Any]] | None = None,
    templates: list[tuple[str, int]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    job = {
        "base_url": base_url,
        "kind": kind,
        "clients": clients,
        "duration_s": duration_s,
        "members": members or [],
        "templates": templates or [],
        **extra,
    }
    completed = subprocess.run(
        [*_taskset(LOAD_CPU), sys.executable, str(ROOT / "bench" / "loadgen.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


class Service:
    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [*_taskset(SERVER_CPU), *command],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def pids(self) -> list[int]:
        return _process_tree(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


LOGIN_FLOOD_CLIENTS = 8
# The member GET routes measured one by one (issue: each >= 0.25 x the bare GET's
# requests/s, and no more than 1.6 x the balance route's server CPU per request).
READ_ROUTES = {
    "balance": "/v1/accounts/{account_id}/balance",
    "account": "/v1/accounts/{account_id}",
    "accounts": "/v1/accounts",
    "history": "/v1/accounts/{account_id}/transactions?limit=20",
    "cards": "/v1/cards",
    "statements": "/v1/accounts/{account_id}/statements",
    "me": "/v1/auth/me",
}
# A person's visit in the web bank, in the proportions its screens call these routes:
# the dashboard (accounts, the last 5 movements of each), an account (detail, 20
# movements), cards, statements, and who is signed in.
DASHBOARD = [
    ("/v1/accounts", 2),
    ("/v1/accounts/{account_id}/transactions?limit=5", 1),
    ("/v1/accounts/{account_id}", 1),
    ("/v1/accounts/{account_id}/transactions?limit=20", 1),
    ("/v1/cards", 1),
    ("/v1/accounts/{account_id}/statements", 1),
    ("/v1/auth/me", 1),
]


def measured(
    service: Service,
    clients: int,
    duration_s: float,
    members: list[dict[str, Any]],
    templates: list[tuple[str, int]],
) -> dict[str, Any]:
    """One read phase, with the server's CPU time per successful request (from /proc)."""
    pids = service.pids()
    cpu_before = _cpu_seconds(pids)
    result = load(service.base_url, "get", clients, duration_s, members, templates)
    cpu = _cpu_seconds(pids) - cpu_before
    result["server_cpu_ms_per_request"] = (
        round(1000 * cpu / result["ok"], 3) if result["ok"] else None
    )
    return result


# Every read phase runs this many times, the routes taking turns (A B C .. A B C ..), and
# each figure is the mean of its rounds: a drift of a shared machine's speed during the
# run weighs on every route alike instead of on whichever ran at a slow moment.
READ_ROUNDS = 2


def _mean_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(runs[-1])
    for key in ("ok_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request"):
        values = [run[key] for run in runs if run.get(key) is not None]
        merged[key] = round(sum(values) / len(values), 3) if values else None
    merged["runs_server_cpu_ms_per_request"] = [run["server_cpu_ms_per_request"] for run in runs]
    statuses: dict[str, int] = {}
    for run in runs:
        for status, count in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    merged["statuses"] = statuses
    return merged


def read_phases(
    service: Service,
    clients: int,
    duration_s: float,
    members: list[dict[str, Any]],
    rounds: int = READ_ROUNDS,
) -> dict[str, Any]:
    phases = {name: [(path, 1)] for name, path in READ_ROUTES.items()}
    phases["dashboard"] = DASHBOARD
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in phases}
    for _ in range(rounds):
        for name, templates in phases.items():
            runs[name].append(measured(service, clients, duration_s / rounds, members, templates))
    dashboard = _mean_of(runs.pop("dashboard"))
    return {
        "routes": {name: _mean_of(found) for name, found in runs.items()},
        "dashboard": dashboard,
    }


def login_flood(
    base_url: str,
    clients: int,
    duration_s: float,
    members: list[dict[str, Any]],
    alone: dict[str, Any],
) -> dict[str, Any]:
    """Transfers while LOGIN_FLOOD_CLIENTS clients send logins with wrong passwords, as a
    ratio of the transfers/s measured alone in the same run (the target is >= 0.70)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        flood = pool.submit(load, base_url, "login_wrong", LOGIN_FLOOD_CLIENTS, duration_s, members)
        transfers = pool.submit(load, base_url, "transfer", clients, duration_s, members)
        logins, moved = flood.result(), transfers.result()
    return {
        "transfers": moved,
        "logins": logins,
        "ratio": round(moved["ok_per_s"] / alone["ok_per_s"], 3) if alone["ok_per_s"] else None,
    }


BATCH_ITEMS = 100


def batch_phase(
    base_url: str,
    clients: int,
    duration_s: float,
    members: list[dict[str, Any]],
    alone: dict[str, Any],
) -> dict[str, Any]:
    """Transfers sent as `POST /v1/transfer-batches` of BATCH_ITEMS items (independent
    mode), as transfers/s and as a ratio of the single-request transfers/s of the same run.
    Fewer clients: each request carries BATCH_ITEMS transfers."""
    batch_clients = max(1, min(clients, 8))
    result = load(base_url, "batch", batch_clients, duration_s, members, batch_items=BATCH_ITEMS)
    transfers_per_s = round(result["ok_per_s"] * BATCH_ITEMS, 1)
    return {
        "requests": result,
        "items_per_batch": BATCH_ITEMS,
        "transfers_per_s": transfers_per_s,
        "ratio_vs_single": round(transfers_per_s / alone["ok_per_s"], 2)
        if alone["ok_per_s"]
        else None,
    }


def bare_baseline(clients: int, duration_s: float, workdir: Path) -> dict[str, Any]:
    port = _free_port()
    service = Service(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        {**os.environ, "PYTHONPATH": str(ROOT)},
        port,
        workdir / "bare.log",
    )
    try:
        _wait_ready(f"{service.base_url}/ping", service.process)
        return load(service.base_url, "bare", clients, duration_s)
    finally:
        service.stop()


def pgbench_baseline(clients: int, duration_s: float) -> dict[str, Any] | None:
    if not shutil.which("pgbench"):
        return None
    name = f"bench_pgbench_{os.getpid()}"
    admin = ["psql", PG_ADMIN, "-q", "-c"]
    subprocess.run([*admin, f'DROP DATABASE IF EXISTS "{name}"'], check=True)
    subprocess.run([*admin, f'CREATE DATABASE "{name}"'], check=True)
    url = re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN)
    try:
        subprocess.run(["pgbench", "-q", "-i", "-s", "10", url], check=True, capture_output=True)
        completed = subprocess.run(
            [
                *_taskset(LOAD_CPU),
                "pgbench",
                "-b",
                "tpcb-like",
                "-c",
                str(clients),
                "-j",
                "1",
                "-T",
                str(max(1, int(duration_s))),
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        tps = float(re.search(r"tps = ([\d.]+)", completed.stdout).group(1))  # type: ignore[union-attr]
        latency = re.search(r"latency average = ([\d.]+) ms", completed.stdout)
        return {
            "tps": round(tps, 1),
            "latency_avg_ms": float(latency.group(1)) if latency else None,
        }
    finally:
        subprocess.run([*admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=False)


async def _setup_members(base_url: str, count: int, deposit: int) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:

        async def one(index: int) -> dict[str, Any]:
            email = f"bench{index}@example.com"
            (
                await http.post(
                    "/v1/auth/signup",
                    json={
                        "email": email,
                        "password": PASSWORD,
                        "first_name": "Bench",
                        "last_name": f"Member{index}",
                        "date_of_birth": "1980-01-01",
                    },
                )
            ).raise_for_status()
            login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            login.raise_for_status()
            token = login.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            account = await http.post(
                "/v1/accounts", json={"type": "checking", "currency": "USD"}, headers=headers
            )
            account.raise_for_status()
            body = account.json()
            deposited = await http.post(
                f"/v1/accounts/{body['id']}/deposits",
                json={"amount": deposit},
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            deposited.raise_for_status()
            card = await http.post(
                f"/v1/accounts/{body['id']}/cards", json={"type": "virtual"}, headers=headers
            )
            card.raise_for_status()
            return {
                "token": token,
                "account_id": body["id"],
                "card_id": card.json()["id"],
                "number": body["number"],
                "email": email,
            }

        semaphore = asyncio.Semaphore(8)

        async def bounded(index: int) -> dict[str, Any]:
            async with semaphore:
                return await one(index)

        members = list(await asyncio.gather(*(bounded(i) for i in range(count))))
    return members


async def _total(base_url: str, members: list[dict[str, Any]]) -> int:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        total = 0
        for member in members:
            response = await http.get(
                f"/v1/accounts/{member['account_id']}/balance",
                headers={"Authorization": f"Bearer {member['token']}"},
            )
            response.raise_for_status()
            total += int(response.json()["balance"])
        return total


def _database_for(config: str, workdir: Path) -> tuple[str, str | None]:
    if config.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{workdir / f'{config}.db'}", None
    name = f"bench_{config.replace('-', '_')}_{os.getpid()}"
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}"'], check=True)
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", f'CREATE DATABASE "{name}"'], check=True)
    url = re.sub(
        r"^postgresql://", "postgresql+asyncpg://", re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN)
    )
    return url, name


def _serve(env: dict[str, str], workers: int, log: Path) -> Service:
    port = _free_port()
    service = Service(
        [
            sys.executable,
            "-m",
            "banking.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env,
        port,
        log,
    )
    _wait_ready(f"{service.base_url}/v1/health/ready", service.process)
    return service


def _admin_endpoint(base_url: str, env: dict[str, str], member: dict[str, Any], url: str) -> None:
    """One webhook endpoint subscribed to every event of the bank: an admin's."""
    subprocess.run(
        [sys.executable, "-m", "banking.cli", "users", "set-role", member["email"], "admin"],
        env=env,
        check=True,
        capture_output=True,
    )
    created = httpx.post(
        f"{base_url}/v1/webhook-endpoints",
        json={"url": url, "event_types": ["*"]},
        headers={"Authorization": f"Bearer {member['token']}"},
        timeout=30,
    )
    created.raise_for_status()


def _sink() -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    process = subprocess.Popen(
        [*_taskset(LOAD_CPU), sys.executable, str(ROOT / "bench" / "webhook_sink.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process, f"http://127.0.0.1:{port}/hooks"


def _sink_report(process: subprocess.Popen[str]) -> dict[str, Any]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_config(
    config: str, workers: int, clients: int, duration_s: float, members_n: int, workdir: Path
) -> dict[str, Any]:
    """One configuration. Transfers/s are measured on the same database without the
    ledger's outbox rows (the same-run baseline, bench/no_outbox/) and with them, in turns
    of half a phase (A B A B), then with one webhook endpoint subscribed to every event,
    delivered to a local receiver (bench/webhook_sink.py). The other phases run on the
    last server (with the outbox)."""
    database_url, pg_name = _database_for(config, workdir)
    # `-info`: production logging (a JSON line per request at INFO); otherwise WARNING.
    log_level = "INFO" if config.endswith("-info") else "WARNING"
    env = {
        **os.environ,
        **SECRETS,
        "APP_ENV": "prod",
        "DATABASE_URL": database_url,
        "RATE_LIMITS_ENABLED": "false",
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": "json",
        "DB_POOL_SIZE": str(max(4, clients // workers + 2)),
        # The bench's webhook receiver listens on 127.0.0.1.
        "WEBHOOK_ALLOW_PRIVATE": "true",
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "-m", "banking.cli", "migrate"], env=env, check=True, capture_output=True
    )
    log = workdir / f"{config}.log"
    result: dict[str, Any] = {"config": config, "workers": workers, "log_level": log_level}
    # The baseline writes movements without their events: it gets a database of its own,
    # so that `banking ledger verify` (step entry_event) holds on this one.
    baseline_url, baseline_pg = _database_for(f"{config}-no-outbox", workdir)
    baseline_env = {
        **env,
        "DATABASE_URL": baseline_url,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "bench" / "no_outbox"), *filter(None, [env.get("PYTHONPATH")])]
        ),
    }
    subprocess.run(
        [sys.executable, "-m", "banking.cli", "migrate"],
        env=baseline_env,
        check=True,
        capture_output=True,
    )
    # Baseline and outbox servers take turns (A B A B) on the same database, so that a
    # drift of the machine's load weighs on both alike; each figure is the mean of its two.
    rounds: dict[str, list[dict[str, Any]]] = {"transfers_no_outbox": [], "transfers": []}
    members_of: dict[str, list[dict[str, Any]]] = {}
    for turn, (name, turn_env) in enumerate(
        [("transfers_no_outbox", baseline_env), ("transfers", env)] * 2
    ):
        service = _serve(turn_env, workers, log)
        try:
            if name not in members_of:
                members_of[name] = asyncio.run(
                    _setup_members(service.base_url, members_n, 1_000_000)
                )
            members = members_of[name]
            pids = service.pids()
            cpu_before, started = _cpu_seconds(pids), time.perf_counter()
            rounds[name].append(
                load(service.base_url, "transfer", clients, duration_s / 2, members)
            )
            cpu_pct = round(
                100 * (_cpu_seconds(pids) - cpu_before) / (time.perf_counter() - started), 1
            )
        finally:
            # The last turn's server (with the outbox) serves the other phases.
            if turn < 3:
                service.stop()
    result["server_cpu_transfers_pct"] = cpu_pct
    for name, runs in rounds.items():
        result[name] = {
            **runs[-1],
            "ok_per_s": round(sum(run["ok_per_s"] for run in runs) / len(runs), 1),
            "runs_ok_per_s": [run["ok_per_s"] for run in runs],
        }
    baseline = result["transfers_no_outbox"]["ok_per_s"]
    result["outbox_ratio"] = (
        round(result["transfers"]["ok_per_s"] / baseline, 3) if baseline else None
    )
    try:
        before = asyncio.run(_total(service.base_url, members))
        result["login_flood"] = login_flood(
            service.base_url, clients, duration_s, members, result["transfers"]
        )
        result["batches"] = batch_phase(
            service.base_url, clients, duration_s, members, result["transfers"]
        )
        result["balance_reads"] = load(service.base_url, "balance", clients, duration_s, members)
        result["hot_account"] = load(service.base_url, "hot", clients, duration_s, members)
        result["reads"] = read_phases(service, clients, duration_s, members)
        sink, sink_url = _sink()
        try:
            _admin_endpoint(service.base_url, env, members[0], sink_url)
            result["transfers_webhook"] = load(
                service.base_url, "transfer", clients, duration_s, members
            )
            # Let the dispatcher catch up before counting what arrived.
            time.sleep(min(10.0, duration_s))
        finally:
            result["webhook_sink"] = _sink_report(sink)
        result["webhook_ratio"] = (
            round(result["transfers_webhook"]["ok_per_s"] / result["transfers"]["ok_per_s"], 3)
            if result["transfers"]["ok_per_s"]
            else None
        )
        after = asyncio.run(_total(service.base_url, members))
        result["rss_mb"] = _rss_mb(service.pids())
        result["conserved"] = before == after
        result["total_before"], result["total_after"] = before, after
    finally:
        service.stop()
    verify = subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
    )
    result["ledger_verify"] = "ok" if verify.returncode == 0 else verify.stdout + verify.stderr
    for name in (pg_name, baseline_pg):
        if name:
            subprocess.run(
                ["psql", PG_ADMIN, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                check=False,
            )
    return result


def _load(values: Any) -> str:
    return " / ".join(f"{value:.2f}" for value in values) if values else "?"


def markdown(report: dict[str, Any]) -> str:
    bare = report["baselines"]["bare_endpoint"]["ok_per_s"]
    pgbench = (report["baselines"].get("pgbench_tpcb_like") or {}).get("tps")
    lines = [
        f"# Benchmark {report['started_at']}",
        "",
        f"{report['clients']} clients, {report['duration_s']} s per phase, "
        f"{report['members']} members. Server pinned to CPU {SERVER_CPU}, load generator "
        f"to CPU {LOAD_CPU}. Baselines: bare endpoint {bare} req/s; pgbench tpcb-like "
        f"{pgbench} tps.",
        "",
        f"Machine load (1/5/15-min load average) before: {_load(report.get('load_before'))}; "
        f"after: {_load(report.get('load_after'))} (`{report.get('uptime', '')}`). The "
        "machine is shared: compare figures within this run (ratios), not across runs.",
        "",
        "| config | transfers/s | p50 | p95 | p99 | max (ms) | vs bare | vs pgbench | "
        "reads/s | vs bare | hot acct/s | statuses | CPU % | RSS MB | conserved | verify | "
        "transfers/s under login flood | ratio | logins/s | transfers/s in 100-item batches | "
        "batch vs single | transfers/s without outbox | outbox ratio | "
        "transfers/s with a webhook to all | ratio | webhooks received |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
        "--- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["configs"]:
        transfers, reads, hot = row["transfers"], row["balance_reads"], row["hot_account"]
        flood = row["login_flood"]
        vs_pg = (
            f"{transfers['ok_per_s'] / pgbench:.2f}"
            if pgbench and "postgres" in row["config"]
            else "-"
        )
        lines.append(
            f"| {row['config']} | {transfers['ok_per_s']} | {transfers['p50_ms']} | "
            f"{transfers['p95_ms']} | {transfers['p99_ms']} | {transfers['max_ms']} | "
            f"{transfers['ok_per_s'] / bare:.2f} | {vs_pg} | {reads['ok_per_s']} | "
            f"{reads['ok_per_s'] / bare:.2f} | {hot['ok_per_s']} | "
            f"{transfers['statuses']} | {row['server_cpu_transfers_pct']} | {row['rss_mb']} | "
            f"{row['conserved']} | {'ok' if row['ledger_verify'] == 'ok' else 'FAILED'} | "
            f"{flood['transfers']['ok_per_s']} | {flood['ratio']} | "
            f"{flood['logins']['requests'] / flood['logins']['elapsed_s']:.1f} | "
            f"{row['batches']['transfers_per_s']} | {row['batches']['ratio_vs_single']} | "
            f"{row['transfers_no_outbox']['ok_per_s']} | {row['outbox_ratio']} | "
            f"{row['transfers_webhook']['ok_per_s']} | {row['webhook_ratio']} | "
            f"{row['webhook_sink']['received']} ({row['webhook_sink']['event_ids']} distinct) |"
        )
    lines += reads_markdown(report)
    return "\n".join(lines) + "\n"


def reads_markdown(report: dict[str, Any]) -> list[str]:
    """Each member GET route: requests/s, its ratio to the bare GET of the same run, and
    server CPU per request (also as a multiple of the balance route's)."""
    bare = report["baselines"]["bare_endpoint"]["ok_per_s"]
    lines = [
        "",
        "## Reads: every member GET route, and a dashboard mix",
        "",
        f"Ratios are to the bare GET endpoint of this run ({bare} req/s); CPU is the server "
        "process's (user + system, from /proc) over the phase, per successful request. "
        f"Each route ran {READ_ROUNDS} times for an equal share of the phase, the routes "
        "taking turns; each figure is the mean of its runs. "
        "`log` is the server's LOG_LEVEL (JSON logs; INFO writes one line per request, as "
        "production runs).",
        "",
        "| config | log | route | reads/s | vs bare GET | p50 ms | p99 ms | "
        "CPU ms/req | CPU vs balance | statuses |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["configs"]:
        reads = row.get("reads")
        if not reads:
            continue
        balance_cpu = reads["routes"]["balance"]["server_cpu_ms_per_request"]
        phases = [*reads["routes"].items(), ("dashboard mix", reads["dashboard"])]
        for name, phase in phases:
            cpu = phase["server_cpu_ms_per_request"]
            versus = f"{cpu / balance_cpu:.2f}" if cpu and balance_cpu else "-"
            path = READ_ROUTES.get(name, "mix")
            lines.append(
                f"| {row['config']} | {row['log_level']} | {name} `{path}` | "
                f"{phase['ok_per_s']} | {phase['ok_per_s'] / bare:.2f} | {phase['p50_ms']} | "
                f"{phase['p99_ms']} | {cpu} | {versus} | {phase['statuses']} |"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument(
        "--configs",
        default="sqlite-1w,sqlite-1w-info,postgres-1w,postgres-1w-info,postgres-2w",
        help="comma-separated: sqlite-1w, postgres-<n>w, each optionally with -info",
    )
    parser.add_argument("--smoke", action="store_true", help="a ~10 s run to keep this working")
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.members, args.configs = 2.0, 5, "sqlite-1w"
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    report: dict[str, Any] = {
        "started_at": started,
        "load_before": os.getloadavg(),
        "clients": args.clients,
        "duration_s": args.duration,
        "members": args.members,
        "baselines": {},
        "configs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        report["baselines"]["bare_endpoint"] = bare_baseline(args.clients, args.duration, workdir)
        if not args.smoke:
            report["baselines"]["pgbench_tpcb_like"] = pgbench_baseline(args.clients, args.duration)
        for config in args.configs.split(","):
            workers = int(config.removesuffix("-info").rsplit("-", 1)[1].rstrip("w"))
            report["configs"].append(
                bench_config(config, workers, args.clients, args.duration, args.members, workdir)
            )
    report["load_after"] = os.getloadavg()
    report["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    table = markdown(report)
    suffix = "-smoke" if args.smoke else ""
    (RESULTS / f"{started}{suffix}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{started}{suffix}.md").write_text(table)
    if not args.smoke:
        (RESULTS / "latest.md").write_text(table)
    print(table)
    bad = [
        row["config"]
        for row in report["configs"]
        if not row["conserved"] or row["ledger_verify"] != "ok"
    ]
    if bad:
        print(f"conservation or ledger verify FAILED for {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
