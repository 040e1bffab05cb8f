"""`banking demo` against a real server process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SECRETS
from tests.server import Server, free_port

pytestmark = pytest.mark.slow

# The demo's steps, in order; the test walks the whole flow, through LAST_STEP.
STEPS = [
    "health",
    "sign-up",
    "log-in",
    "open-accounts",
    "deposit",
    "own-transfer",
    "send-money",
    "retry",
    "overdraft",
    "balances",
    "card",
    "statement",
    "payee",
    "standing-order",
    "batch",
]
LAST_STEP = "batch"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    with Server(database_url, log_path=tmp_path / "server.log") as running:
        yield running


def demo(
    *args: str, network_key: str = TEST_SECRETS["card_network_api_key"]
) -> tuple[int, str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEST_")}
    env["CARD_NETWORK_API_KEY"] = network_key
    completed = subprocess.run(
        [sys.executable, "-m", "banking.cli", "demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return completed.returncode, completed.stdout, completed.stderr


def test_the_sign_up_and_log_in_steps_pass_and_print_tables(server: Server) -> None:
    status, out, err = demo("--base-url", server.base_url, "--until", "log-in")
    assert status == 0, out + err
    for title in ("1. Server is ready", "2. Sign up two people", "3. Log in"):
        assert title in out
    assert "Ada Lovelace" in out
    assert "Grace Hopper" in out
    assert "every step answered as expected" in out


def test_json_mode_reports_each_step_for_scripts(server: Server) -> None:
    status, out, err = demo("--base-url", server.base_url, "--until", "log-in", "--json")
    assert status == 0, out + err
    document = json.loads(out)
    assert document["ok"] is True
    assert [step["step"] for step in document["steps"]] == ["health", "sign-up", "log-in"]
    people = document["steps"][1]["rows"]
    assert [row["role"] for row in people] == ["member", "member"]


def test_the_flow_passes_end_to_end(server: Server) -> None:
    status, out, err = demo("--base-url", server.base_url, "--until", LAST_STEP, "--json")
    assert status == 0, out + err
    document = json.loads(out)
    assert document["ok"] is True, out
    steps = {step["step"]: step for step in document["steps"]}
    assert list(steps) == STEPS[: STEPS.index(LAST_STEP) + 1]
    retry = steps["retry"]["rows"][0]
    assert (retry["replayed"], retry["same transfer"]) == ("yes", "yes")
    assert steps["overdraft"]["rows"][0]["code"] == "insufficient_funds"
    balances = {(row["owner"], row["type"]): row["balance"] for row in steps["balances"]["rows"]}
    assert balances == {
        ("Ada", "checking"): "675.00 USD",
        ("Ada", "savings"): "250.00 USD",
        ("Grace", "checking"): "75.00 USD",
    }
    assert steps["payee"]["rows"][0]["holder"] == "G*** H***"
    assert steps["standing-order"]["rows"][0]["status"] == "active"
    assert [row["status"] for row in steps["batch"]["rows"]] == ["posted"] * 3


def test_the_tables_name_every_step_for_people(server: Server) -> None:
    status, out, err = demo("--base-url", server.base_url, "--until", LAST_STEP)
    assert status == 0, out + err
    assert "✓ 9. An overdraft is declined" in out
    assert "replayed" in out
    assert "every step answered as expected" in out
    # Ids are left out for people; the recap and the web login close the run.
    assert re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", out) is None
    assert "Recap" in out
    assert "15 of 15 steps answered as expected" in out
    assert f"See it in the web bank: {server.base_url}/" in out
    assert "log in as ada." in out


def test_verbose_prints_the_ids_too(server: Server) -> None:
    status, out, err = demo("--base-url", server.base_url, "--until", "sign-up", "--verbose")
    assert status == 0, out + err
    assert re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", out) is not None


def test_help_lists_the_steps() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "banking.cli", "demo", "--help"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    for number, name in enumerate(STEPS, start=1):
        assert f"{number}. {name}:" in completed.stdout


def test_the_exit_status_is_zero_only_when_every_step_went_as_expected(server: Server) -> None:
    # Every step as expected: exit 0, and the report says ok for each one.
    status, out, err = demo("--base-url", server.base_url, "--json")
    assert status == 0, out + err
    document: dict[str, Any] = json.loads(out)
    assert document["ok"] is True
    assert [step["step"] for step in document["steps"]] == STEPS
    assert all(step["ok"] for step in document["steps"]), out

    # The card network refuses a wrong key: the walk stops at the card step, exits 1 and
    # says what the server answered; the steps before it still went as expected.
    status, out, err = demo("--base-url", server.base_url, "--json", network_key="wrong-key")
    assert status == 1, out + err
    document = json.loads(out)
    assert document["ok"] is False
    steps = document["steps"]
    assert [step["step"] for step in steps] == STEPS[: STEPS.index("card") + 1]
    assert all(step["ok"] for step in steps[:-1])
    failed = steps[-1]
    assert failed["ok"] is False
    assert failed["code"] == "invalid_network_key"
    assert failed["detail"]


def test_an_unreachable_server_fails_the_first_step() -> None:
    status, out, _ = demo("--base-url", f"http://127.0.0.1:{free_port()}", "--json")
    assert status == 1
    document = json.loads(out)
    assert document["steps"] == [
        {
            "step": "health",
            "title": "Server is ready",
            "ok": False,
            "code": "network_error",
            "detail": document["steps"][0]["detail"],
        }
    ]
    assert "ConnectError" in document["steps"][0]["detail"]


def test_an_unknown_step_name_is_a_usage_error() -> None:
    status, _, err = demo("--until", "nonsense")
    assert status == 2
    assert "unknown step 'nonsense'" in err
