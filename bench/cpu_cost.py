"""Server CPU per request, a figure that holds on a busy machine where requests/s does not.

`python -m bench.cpu_cost [--pg] [--log-level INFO] [--profile DIR]` starts `banking serve`
(one worker) on a fresh database, opens accounts through the API, then runs transfers and
balance reads for a fixed time each and prints the server's user+system CPU milliseconds
per successful request next to the rate. `--kinds` also takes the read routes of
`bench/run.py` by name (`--kinds transfer,balance,history,statements`: each GET route
alone; run `transfer` first, or the accounts have no history).
With `--profile`, py-spy records each phase (py-spy must be installed in the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import (
    READ_ROUTES,
    SECRETS,
    Service,
    _cpu_seconds,
    _database_for,
    _free_port,
    _setup_members,
    _wait_ready,
    load,
)


def _phase(
    service: Service,
    kind: str,
    clients: int,
    duration_s: float,
    members: list[dict[str, Any]],
    profile: Path | None,
) -> dict[str, Any]:
    pids = service.pids()
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(service.process.pid),
                "--format",
                "raw",
                "-o",
                str(profile / f"{kind}.txt"),
                "--gil",
                "--threads",
                "--rate",
                "300",
                "--nonblocking",
                "--duration",
                str(int(duration_s)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    cpu_before, started = _cpu_seconds(pids), time.perf_counter()
    if kind in READ_ROUTES and kind != "balance":
        result = load(
            service.base_url, "get", clients, duration_s, members, [(READ_ROUTES[kind], 1)]
        )
    else:
        result = load(service.base_url, kind, clients, duration_s, members)
    cpu_s = _cpu_seconds(pids) - cpu_before
    elapsed = time.perf_counter() - started
    if spy is not None:
        spy.wait(60)
    ok = max(1, result["ok"])
    return {
        "kind": kind,
        "ok": result["ok"],
        "statuses": result["statuses"],
        "cpu_ms_per_request": round(cpu_s / ok * 1000, 3),
        "server_cores": round(cpu_s / elapsed, 2),
        "ok_per_s": result["ok_per_s"],
        "p99_ms": result["p99_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--rate-limits", action="store_true", help="keep rate limits on")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles to this folder")
    parser.add_argument(
        "--kinds",
        default="transfer,balance",
        help=f"comma-separated: transfer, balance, hot, or a read route ({', '.join(READ_ROUTES)})",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cpu-cost-"))
    database_url, pg_name = _database_for("postgres-1w" if args.pg else "sqlite-1w", workdir)
    env = {
        **os.environ,
        **SECRETS,
        "APP_ENV": "prod",
        "DATABASE_URL": database_url,
        "RATE_LIMITS_ENABLED": "true" if args.rate_limits else "false",
        "LOG_LEVEL": args.log_level,
        "LOG_FORMAT": "json",
        "DB_POOL_SIZE": str(max(4, args.clients + 2)),
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "-m", "banking.cli", "migrate"], env=env, check=True, capture_output=True
    )
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [sys.executable, "-m", "banking.cli", "serve", "--port", str(port)]
    service = Service(command, env, port, workdir / "server.log")
    try:
        _wait_ready(f"{service.base_url}/v1/health/ready", service.process)
        members = asyncio.run(_setup_members(service.base_url, args.members, 1_000_000))
        for kind in args.kinds.split(","):
            print(_phase(service, kind, args.clients, args.duration, members, args.profile))
    finally:
        service.stop()
        if pg_name:
            from bench.run import PG_ADMIN

            subprocess.run(
                ["psql", PG_ADMIN, "-q", "-c", f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'],
                check=False,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
