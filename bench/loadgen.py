"""A small, fast load generator: keep-alive HTTP/1.1 over asyncio streams.

Run as its own process (pinned to its own CPU by bench/run.py). Reads a JSON job on
stdin, writes JSON results on stdout. A hand-written client keeps the generator's own CPU
cost far below the server's, so the figures measure the server.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _request_for(
    job: dict[str, Any], rng: random.Random
) -> tuple[str, str, dict[str, str], bytes | None]:
    kind = job["kind"]
    members = job.get("members", [])
    if kind == "bare":
        return "GET", "/ping", {}, None
    if kind == "balance":
        member = rng.choice(members)
        return (
            "GET",
            f"/v1/accounts/{member['account_id']}/balance",
            {"Authorization": f"Bearer {member['token']}"},
            None,
        )
    if kind == "get":
        # A read route (or a weighted mix of them): `templates` are (path, weight) pairs
        # whose {names} are filled from a random member (account_id, card_id, ...).
        member = rng.choice(members)
        paths, weights = zip(*job["templates"], strict=True)
        template = rng.choices(paths, weights)[0] if len(paths) > 1 else paths[0]
        return (
            "GET",
            template.format(**member),
            {"Authorization": f"Bearer {member['token']}"},
            None,
        )
    if kind == "login_wrong":
        # A login flood: real emails, wrong passwords (each one costs an Argon2 check).
        member = rng.choice(members)
        body = json.dumps(
            {"email": member["email"], "password": f"Wrong-{rng.randrange(10**9)}-Guess"}
        ).encode()
        return "POST", "/v1/auth/login", {}, body
    if kind == "batch":
        # One request carries BATCH_ITEMS transfers from one member to random others.
        source = rng.choice(members)
        items = []
        for _ in range(job.get("batch_items", 100)):
            target = rng.choice(members)
            while target is source:
                target = rng.choice(members)
            items.append(
                {
                    "source_account_id": source["account_id"],
                    "target_account_number": target["number"],
                    "amount": rng.randint(1, 100),
                }
            )
        body = json.dumps({"mode": "independent", "items": items}).encode()
        return (
            "POST",
            "/v1/transfer-batches",
            {"Authorization": f"Bearer {source['token']}", "Idempotency-Key": uuid.uuid4().hex},
            body,
        )
    if kind in ("transfer", "hot"):
        source = rng.choice(members[1:] if kind == "hot" else members)
        target = members[0] if kind == "hot" else rng.choice(members)
        while target is source:
            target = rng.choice(members)
        body = json.dumps(
            {
                "source_account_id": source["account_id"],
                "target_account_number": target["number"],
                "amount": rng.randint(1, 100),
            }
        ).encode()
        return (
            "POST",
            "/v1/transfers",
            {"Authorization": f"Bearer {source['token']}", "Idempotency-Key": uuid.uuid4().hex},
            body,
        )
    raise ValueError(kind)


async def _client(
    job: dict[str, Any], seed: int, deadline: float, latencies: list[float], statuses: Counter[int]
) -> None:
    parts = urlsplit(job["base_url"])
    connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
    rng = random.Random(seed)
    try:
        while time.perf_counter() < deadline:
            method, path, headers, body = _request_for(job, rng)
            started = time.perf_counter()
            try:
                status, _ = await connection.request(method, path, headers, body)
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                connection.close()
                statuses[0] += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
    finally:
        connection.close()


async def run(job: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    deadline = started + job["duration_s"]
    await asyncio.gather(
        *(_client(job, seed, deadline, latencies, statuses) for seed in range(job["clients"]))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return 0.0
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    return {
        "kind": job["kind"],
        "clients": job["clients"],
        "elapsed_s": round(elapsed, 2),
        "requests": len(latencies),
        "ok": ok,
        "ok_per_s": round(ok / elapsed, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else 0.0,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
    }


if __name__ == "__main__":
    job = json.load(sys.stdin)
    try:
        import uvloop

        result = uvloop.run(run(job))
    except ImportError:  # pragma: no cover
        result = asyncio.run(run(job))
    print(json.dumps(result))
