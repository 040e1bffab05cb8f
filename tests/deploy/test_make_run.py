"""`make run` as a newcomer sees it: migrate, seed, the logins, a quiet start, a quiet stop.

Runs the real Makefile (the installed .venv is reused: its install steps are marked done
with `make -o`) from a scratch directory, so var/ and the database are the test's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRETS
from tests.deploy.support import ROOT
from tests.server import free_port, wait_until

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in found.read_text().split()] if found.exists() else []


def test_make_run_seeds_serves_and_stops_quietly(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEST_")}
    env.update(
        {
            "APP_ENV": "dev",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/var/banking.db",
            "LOG_FORMAT": "console",
            "BANKING_SEED_PASSWORD": "Granite-Meadow-Beacon-77",
            **{name.upper(): value for name, value in TEST_SECRETS.items()},
        }
    )
    (tmp_path / "var").mkdir()
    command = [
        "make", "--no-print-directory", "-f", str(ROOT / "Makefile"),
        "-o", f"{venv}/.installed", "-o", f"{venv}/bin/python",
        f"VENV={venv}", f"PORT={port}", "SEED_ARGS=--users 2 --months 1", "run",
    ]  # fmt: skip
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:

        def ready() -> bool:
            assert make.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v1/health/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout_s=120, what="make run to serve")
        # The server is make's child: stop it the way a supervisor or `kill` would.
        (server,) = _children(make.pid)
        os.kill(server, signal.SIGTERM)
        assert make.wait(30) == 0, log.read_text()
    finally:
        if make.poll() is None:
            make.kill()
            make.wait(10)
    output = log.read_text()
    assert "seeded 2 people" in output
    assert "Granite-Meadow-Beacon-77" in output
    assert "banking seed --show-logins" in output
    assert "setup plugin" not in output
    assert "Terminated" not in output
    assert "Error" not in output

    # The logins again, later, without reseeding.
    shown = subprocess.run(
        [f"{venv}/bin/banking", "seed", "--show-logins"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "Granite-Meadow-Beacon-77" in shown.stdout
    assert "admin@example.com" in shown.stdout
