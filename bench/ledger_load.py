"""Quick transfer load against a real server: `python bench/ledger_load.py [--pg URL]`.

Starts `banking serve` on a fresh database, opens accounts, then runs CLIENTS concurrent
keep-alive connections doing transfers (each with an Idempotency-Key) for DURATION
seconds and prints transfers/s and latency percentiles. The client speaks raw HTTP/1.1
over asyncio streams so that it costs little CPU next to the server on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.factories import PASSWORD
from tests.server import Server

from banking.core.migrate import upgrade


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its worker children (Linux /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def setup(base_url: str, members: int, accounts_each: int) -> list[tuple[str, list[dict]]]:
    out = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for index in range(members):
            email = f"bench{index}-{uuid.uuid4().hex[:6]}@example.com"
            http.post(
                "/v1/auth/signup",
                json={
                    "email": email,
                    "password": PASSWORD,
                    "first_name": "B",
                    "last_name": "L",
                    "date_of_birth": "1980-01-01",
                },
            ).raise_for_status()
            token = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()[
                "access_token"
            ]
            headers = {"Authorization": f"Bearer {token}"}
            accounts = []
            for _ in range(accounts_each):
                account = http.post(
                    "/v1/accounts", json={"type": "checking"}, headers=headers
                ).json()
                http.post(
                    f"/v1/accounts/{account['id']}/deposits",
                    json={"amount": 10_000_000},
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                ).raise_for_status()
                accounts.append(account)
            out.append((token, accounts))
    return out


async def client(
    port: int,
    token: str,
    mine: list[dict],
    everyone: list[dict],
    stop: float,
    latencies: list[float],
    statuses: dict[int, int],
    seed: int,
) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < stop:
        source, target = rng.choice(mine), rng.choice(everyone)
        body = json.dumps(
            {
                "source_account_id": source["id"],
                "target_account_number": target["number"],
                "amount": rng.randint(1, 500),
            }
        ).encode()
        request = (
            f"POST /v1/transfers HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
            f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()


async def load(
    port: int, members: list[tuple[str, list[dict]]], clients: int, duration: float
) -> tuple[list[float], dict[int, int], float]:
    everyone = [account for _, accounts in members for account in accounts]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    stop = started + duration
    await asyncio.gather(
        *(
            client(port, *members[i % len(members)], everyone, stop, latencies, statuses, i)
            for i in range(clients)
        )
    )
    return latencies, statuses, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", help="a PostgreSQL URL of an empty database to use")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ledger-load-"))
    url = args.pg or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    upgrade(url)
    server = Server(
        url,
        workers=args.workers,
        log_path=workdir / "server.log",
        DB_POOL_SIZE=str(args.clients),
        LOG_LEVEL="WARNING",
    )
    with server:
        members = setup(server.base_url, 16, 8)
        assert server.process is not None
        cpu_before = process_cpu_s(server.process.pid)
        latencies, statuses, elapsed = asyncio.run(
            load(server.port, members, args.clients, args.duration)
        )
        server_cpu_s = process_cpu_s(server.process.pid) - cpu_before
        metrics = httpx.get(f"{server.base_url}/metrics").text
        for line in metrics.splitlines():
            if line.startswith("banking_ledger_commit_batch") and (
                "_sum" in line or "_count" in line
            ):
                print(line)
    latencies.sort()
    count = len(latencies)
    print(
        f"database={'postgresql' if args.pg else 'sqlite'} workers={args.workers} "
        f"clients={args.clients} duration={elapsed:.1f}s"
    )
    print(f"transfers={count} rate={count / elapsed:.0f}/s statuses={statuses}")
    print(
        f"server_cpu_per_transfer={server_cpu_s / count * 1000:.2f}ms "
        f"server_cpu_utilisation={server_cpu_s / elapsed:.2f} cores"
    )
    print(
        f"p50={statistics.median(latencies) * 1000:.1f}ms "
        f"p99={latencies[int(count * 0.99)] * 1000:.1f}ms max={latencies[-1] * 1000:.1f}ms"
    )


if __name__ == "__main__":
    main()
