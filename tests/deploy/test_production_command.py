"""The production command itself: `banking migrate`, then `banking serve --workers 2` with
APP_ENV=prod against PostgreSQL and Redis. Ready, serves, exposes metrics for all workers,
logs JSON, and drains on SIGTERM.

Draining is shown without the test-only slow route (it is not mounted in production): the
test sends a login request's headers with `Expect: 100-continue` and holds the body back.
The server answers `100 Continue` only once the application is waiting for the body, so the
request is provably in flight inside a worker. Then SIGTERM goes to the supervisor, the test
waits until both workers log that they are shutting down, sends the body, and the request
must still complete with 200 before the process exits cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine.url import make_url

from tests.databases import ON_POSTGRES
from tests.deploy.support import dockerfile_instructions, healthcheck_command
from tests.factories import PASSWORD
from tests.server import Server

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (ON_POSTGRES and TEST_REDIS_URL),
        reason="the production command runs against PostgreSQL and Redis: "
        "set TEST_DATABASE_URL and TEST_REDIS_URL (as .ci/run does)",
    ),
]
EMAIL = "prod-check@example.com"


def production_env(tmp_path: Path) -> dict[str, str]:
    metrics_parent = tmp_path / "tmp"
    metrics_parent.mkdir()
    return {
        "APP_ENV": "prod",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "CARD_ENCRYPTION_KEY": secrets.token_urlsafe(48),
        "CARD_NETWORK_API_KEY": secrets.token_urlsafe(48),
        "AUDIT_KEY": secrets.token_urlsafe(48),
        "REDIS_URL": TEST_REDIS_URL,
        # Empty means "not set": production's default format, JSON.
        "LOG_FORMAT": "",
        "RATE_LIMITS_ENABLED": "true",
        # Generous, so other tests sharing this Redis cannot push this one over a limit.
        "RATE_LIMIT_SIGNUP": "1000/minute",
        "RATE_LIMIT_LOGIN": "1000/minute",
        "DB_POOL_SIZE": "3",
        "SHUTDOWN_TIMEOUT_S": "20",
        # Where `banking serve` creates the multiprocess metrics directory.
        "TMPDIR": str(metrics_parent),
    }


async def _empty_schema(url: str) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


def banking_command() -> list[str]:
    script = Path(sys.executable).with_name("banking")
    return [str(script)] if script.exists() else [sys.executable, "-m", "banking.cli"]


def log_events(log: str) -> list[dict[str, Any]]:
    events = []
    for line in log.splitlines():
        if line.strip():
            events.append(json.loads(line))  # every line must be JSON
    return events


def wait_for(predicate: Any, *, timeout_s: float, what: str, server: Server) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {server.logs()}")


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_migrate_then_serve_two_workers_in_production(database_url: str, tmp_path: Path) -> None:
    asyncio.run(_empty_schema(database_url))
    env = production_env(tmp_path)
    server = Server(database_url, workers=2, log_path=tmp_path / "server.log", **env)

    migrated = subprocess.run(
        [*banking_command(), "migrate"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "database migrated to head" in migrated.stdout

    server.start(timeout_s=60)
    try:
        base = server.base_url
        ready = httpx.get(f"{base}/v1/health/ready", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}

        # The image's own health check command, pointed at this server.
        probe = healthcheck_command(dockerfile_instructions())
        probe[-1] = probe[-1].replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
        assert subprocess.run([sys.executable, *probe[1:]], timeout=30).returncode == 0

        # A real request: sign up and log in.
        signup = httpx.post(
            f"{base}/v1/auth/signup",
            json={
                "email": EMAIL,
                "password": PASSWORD,
                "first_name": "Prod",
                "last_name": "Check",
                "date_of_birth": "1980-01-01",
            },
            timeout=10,
        )
        assert signup.status_code == 201, signup.text
        login = httpx.post(
            f"{base}/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=10
        )
        assert login.status_code == 200, login.text
        assert login.headers.get("server") is None
        token = login.json()["access_token"]
        sessions = httpx.get(
            f"{base}/v1/auth/sessions", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert sessions.status_code == 200

        # /metrics adds up every worker: each new connection may land on either worker.
        for _ in range(20):
            assert httpx.get(f"{base}/v1/health/live", timeout=5).status_code == 200
        metrics_dirs = list((tmp_path / "tmp").glob("banking-metrics-*"))
        assert len(metrics_dirs) == 1
        assert list(metrics_dirs[0].glob("*.db"))
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        live = re.search(
            r'banking_http_requests_total\{method="GET",route="/v1/health/live",status="200"\}'
            r" ([0-9.]+)",
            metrics,
        )
        assert live is not None, metrics[:2000]
        assert float(live.group(1)) == 20

        # Drain: hold a login in flight across SIGTERM.
        body = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(
                b"POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            interim = sock.recv(1024)
            assert interim.startswith(b"HTTP/1.1 100"), interim
            server.signal(signal.SIGTERM)
            wait_for(
                lambda: server.log_path.read_text().count('"Shutting down"') >= 2,
                timeout_s=20,
                what="both workers to start shutting down",
                server=server,
            )
            sock.sendall(body)
            response = read_response(sock)
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), response[:500]
        assert b"access_token" in payload
        assert server.wait(30) == 0
    finally:
        server.stop()

    events = log_events(server.log_path.read_text())
    requests = [event for event in events if event.get("event") == "request"]
    assert {"route": "/v1/auth/signup", "status": 201} in [
        {"route": event["route"], "status": event["status"]} for event in requests
    ]
    for event in requests:
        assert event["request_id"]
        assert isinstance(event["duration_ms"], float | int)
    assert sum(event.get("event") == "stopped" for event in events) == 2
    # The worker holding the login waited for it instead of closing the connection.
    assert any(
        str(event.get("event", "")).startswith("Waiting for connections") for event in events
    )
    assert PASSWORD not in server.log_path.read_text()
    # The supervisor removed the metrics directory it created.
    assert list((tmp_path / "tmp").glob("banking-metrics-*")) == []
