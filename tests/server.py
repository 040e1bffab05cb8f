"""Run the real `banking serve` in a subprocess for end-to-end and reliability tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TEST_SECRETS
from tests.databases import ON_POSTGRES


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Return as soon as `condition()` holds (checked every 10 ms); fail after `timeout_s`.
    For events a test cannot be called back on: a log line, a port closing."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


def port_is_closed(port: int) -> bool:
    """True when nothing accepts connections on 127.0.0.1:`port` any more."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _port_block() -> range:
    """Server ports for this test process, below Linux's ephemeral range (32768-60999).

    Client connections take their local ports from the ephemeral range, so a port from
    this block is never taken by one between a server's stop and its restart on the same
    port. Each pytest-xdist worker has its own block of 400, and the SQLite and PostgreSQL
    suites (which CI runs side by side) have their own halves.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % 15 if worker.isdigit() else 0
    start = (26_000 if ON_POSTGRES else 20_000) + index * 400
    return range(start, start + 400)


def free_port() -> int:
    """A port of this process's block that nothing listens on right now."""
    block = _port_block()
    offset = random.randrange(len(block))
    for step in range(len(block)):
        port = block[(offset + step) % len(block)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {block}")


def server_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEST_")}
    env.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "LOG_FORMAT": "json",
            "RATE_LIMITS_ENABLED": "false",
            **{name.upper(): value for name, value in TEST_SECRETS.items()},
        }
    )
    env.update(overrides)
    return env


class PortTaken(Exception):
    pass


class Server:
    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 1,
        log_path: Path,
        port: int | None = None,
        **env: str,
    ) -> None:
        self.fixed_port = port is not None
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = server_env(database_url, **env)
        self.workers = workers
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout_s: float = 30.0) -> Server:
        restart = self.process is not None
        for _ in range(4):
            try:
                return self._start(timeout_s)
            except PortTaken:
                # Another process bound the port since it was picked: take another one,
                # unless the test asked for this port or restarts the server on it.
                if self.fixed_port or restart:
                    raise
                self.port = free_port()
                self.base_url = f"http://127.0.0.1:{self.port}"
        return self._start(timeout_s)

    def _start(self, timeout_s: float) -> Server:
        logged_before = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "banking.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_bytes()[logged_before:]
                if b"address already in use" in tail.lower():
                    raise PortTaken(self.port)
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/v1/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready: {self.logs()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        # The whole process group: with several workers the children must go too.
        os.killpg(
            self.process.pid, signum
        ) if signum == signal.SIGKILL else self.process.send_signal(signum)

    def wait(self, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
