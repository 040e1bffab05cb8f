"""`make bench`: transfers, balance reads and a hot account against a real server, next to
two baselines measured in the same run (a bare endpoint of the same framework, and pgbench
tpcb-like), for SQLite (1 worker) and PostgreSQL (1 and 2 workers). One phase sends
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
) -> dict[str, Any]:
    job = {
        "base_url": base_url,
        "kind": kind,
        "clients": clients,
        "duration_s": duration_s,
        "members": members or [],
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
            return {
                "token": token,
                "account_id": body["id"],
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
        return f"sqlite+aiosqlite:///{workdir / 'bench.db'}", None
    name = f"bench_{config.replace('-', '_')}_{os.getpid()}"
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}"'], check=True)
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", f'CREATE DATABASE "{name}"'], check=True)
    url = re.sub(
        r"^postgresql://", "postgresql+asyncpg://", re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN)
    )
    return url, name


def bench_config(
    config: str, workers: int, clients: int, duration_s: float, members_n: int, workdir: Path
) -> dict[str, Any]:
    database_url, pg_name = _database_for(config, workdir)
    env = {
        **os.environ,
        **SECRETS,
        "APP_ENV": "prod",
        "DATABASE_URL": database_url,
        "RATE_LIMITS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "DB_POOL_SIZE": str(max(4, clients // workers + 2)),
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "-m", "banking.cli", "migrate"], env=env, check=True, capture_output=True
    )
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
        workdir / f"{config}.log",
    )
    result: dict[str, Any] = {"config": config, "workers": workers}
    try:
        _wait_ready(f"{service.base_url}/v1/health/ready", service.process)
        members = asyncio.run(_setup_members(service.base_url, members_n, 1_000_000))
        before = asyncio.run(_total(service.base_url, members))
        pids = service.pids()
        cpu_before, started = _cpu_seconds(pids), time.perf_counter()
        result["transfers"] = load(service.base_url, "transfer", clients, duration_s, members)
        result["server_cpu_transfers_pct"] = round(
            100 * (_cpu_seconds(pids) - cpu_before) / (time.perf_counter() - started), 1
        )
        result["login_flood"] = login_flood(
            service.base_url, clients, duration_s, members, result["transfers"]
        )
        result["balance_reads"] = load(service.base_url, "balance", clients, duration_s, members)
        result["hot_account"] = load(service.base_url, "hot", clients, duration_s, members)
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
    if pg_name:
        subprocess.run(
            ["psql", PG_ADMIN, "-q", "-c", f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'],
            check=False,
        )
    return result


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
        "| config | transfers/s | p50 | p95 | p99 | max (ms) | vs bare | vs pgbench | "
        "reads/s | vs bare | hot acct/s | statuses | CPU % | RSS MB | conserved | verify | "
        "transfers/s under login flood | ratio | logins/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
        "--- | --- | --- | --- | --- |",
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
            f"{flood['logins']['requests'] / flood['logins']['elapsed_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--configs", default="sqlite-1w,postgres-1w,postgres-2w")
    parser.add_argument("--smoke", action="store_true", help="a ~10 s run to keep this working")
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.members, args.configs = 2.0, 5, "sqlite-1w"
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    report: dict[str, Any] = {
        "started_at": started,
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
            workers = int(config.rsplit("-", 1)[1].rstrip("w"))
            report["configs"].append(
                bench_config(config, workers, args.clients, args.duration, args.members, workdir)
            )
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
