"""The real server process: start-up checks, graceful shutdown, commit-before-response."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from banking.identity.models import User
from tests.factories import PASSWORD
from tests.server import Server, port_is_closed, server_env, wait_until

pytestmark = pytest.mark.slow


def test_sigterm_lets_the_in_flight_request_finish_and_refuses_new_ones(
    database_url: str, tmp_path: Path
) -> None:
    server = Server(database_url, log_path=tmp_path / "server.log").start()
    result: dict[str, object] = {}

    def slow_request() -> None:
        try:
            response = httpx.get(f"{server.base_url}/v1/test/slow?ms=2000", timeout=10)
            result["status"] = response.status_code
            result["body"] = response.json()
        except httpx.HTTPError as exc:  # pragma: no cover - reported by the assert below
            result["error"] = repr(exc)

    worker = threading.Thread(target=slow_request)
    worker.start()
    # The request is in flight once the route logged its start.
    wait_until(
        lambda: '"slow_request_started"' in server.logs(), timeout_s=15, what="the slow request"
    )
    server.signal(signal.SIGTERM)
    # The listening socket closes at once, while the slow request is still running.
    wait_until(lambda: port_is_closed(server.port), timeout_s=5, what="the port to close")
    assert worker.is_alive(), "the slow request ended before the port closed"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/v1/health/live", timeout=2)
    worker.join(15)
    assert result == {"status": 200, "body": {"slept_ms": 2000}}, server.logs()
    # A requested, graceful stop is a clean exit.
    assert server.wait(15) == 0
    assert '"stopped"' in server.logs()


def test_a_write_is_visible_to_the_next_request_every_time(
    database_url: str, tmp_path: Path
) -> None:
    with (
        Server(database_url, log_path=tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        signup = http.post(
            "/v1/auth/signup",
            json={
                "email": "rw@example.com",
                "password": PASSWORD,
                "first_name": "R",
                "last_name": "W",
                "date_of_birth": "1980-01-01",
            },
        )
        assert signup.status_code == 201
        login = http.post("/v1/auth/login", json={"email": "rw@example.com", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for _ in range(100):
            sessions = http.get("/v1/auth/sessions", headers=headers).json()["items"]
            other = http.post(
                "/v1/auth/login", json={"email": "rw@example.com", "password": PASSWORD}
            ).json()
            # The new session must be listed by the very next request...
            after = http.get("/v1/auth/sessions", headers=headers).json()["items"]
            assert len(after) == len(sessions) + 1
            # ...and its revocation must hold on the very next request.
            other_headers = {"Authorization": f"Bearer {other['access_token']}"}
            assert http.post("/v1/auth/logout", headers=other_headers).status_code == 204
            assert http.get("/v1/auth/sessions", headers=other_headers).status_code == 401
    # The server process hashes with the production parameters (only the test process
    # itself uses cheap ones, see tests/conftest.py).
    assert asyncio.run(_password_hash(database_url, "rw@example.com")).startswith(
        "$argon2id$v=19$m=47104,t=2,p=1$"
    )


async def _password_hash(database_url: str, email: str) -> str:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(select(User.password_hash).where(User.email == email))
            assert isinstance(found, str)
            return found
    finally:
        await engine.dispose()


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "banking.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_a_default_secret(database_url: str) -> None:
    env = server_env(database_url, APP_ENV="prod", JWT_SECRET="changeme")
    completed = _serve(env)
    assert completed.returncode != 0
    assert "JWT_SECRET is missing or a known default" in completed.stderr


def test_production_refuses_a_short_secret(database_url: str) -> None:
    env = server_env(database_url, APP_ENV="prod", CARD_ENCRYPTION_KEY="short-but-not-default")
    completed = _serve(env)
    assert completed.returncode != 0
    assert "CARD_ENCRYPTION_KEY is shorter than 32 bytes" in completed.stderr


def test_start_up_fails_fast_when_the_database_is_unreachable(tmp_path: Path) -> None:
    env = server_env("postgresql+asyncpg://nobody@127.0.0.1:1/none", DB_CONNECT_TIMEOUT_S="1")
    started = time.monotonic()
    completed = _serve(env)
    assert completed.returncode != 0
    assert "database unreachable" in completed.stderr + completed.stdout
    assert time.monotonic() - started < 30
