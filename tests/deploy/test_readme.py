"""Every command README shows is real: `make` targets exist in the Makefile, `banking`
command lines parse against the CLI, and the curl walk-through calls existing routes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from tools import apidocs

from tests.conftest import TEST_SECRETS
from tests.deploy.support import ROOT, resolve_banking_command, split_command
from tests.server import Server

README = (ROOT / "README.md").read_text()
_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def code_lines() -> list[str]:
    """Shell lines of README's code blocks, continuation lines joined, prompts removed."""
    lines: list[str] = []
    fences = re.findall(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", README, re.M | re.S)
    for language, block in fences:
        if language not in {"", "bash", "sh", "shell", "console"}:
            continue
        pending = ""
        for raw in block.splitlines():
            line = raw.strip().removeprefix("$ ")
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            lines.append(pending + line)
            pending = ""
    return lines


def commands(program: str) -> list[list[str]]:
    found = []
    for line in code_lines():
        if not line or line.startswith("#"):
            continue
        try:
            words = split_command(line)
        except ValueError:
            continue
        while words and _ASSIGNMENT.match(words[0]):
            words.pop(0)
        if words and words[0].rsplit("/", 1)[-1] == program:
            found.append(words[1:])
    return found


MAKE_COMMANDS = commands("make")
BANKING_COMMANDS = commands("banking")


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.MULTILINE))


def test_readme_opens_with_the_two_commands() -> None:
    assert MAKE_COMMANDS[:2] == [["run"], ["test"]]
    first_block = README.split("```", 2)[1]
    assert "make run" in first_block
    assert "make test" in first_block


@pytest.mark.parametrize("args", MAKE_COMMANDS, ids=lambda args: " ".join(args))
def test_make_target_exists_and_dry_runs(args: list[str]) -> None:
    targets = [arg for arg in args if "=" not in arg and not arg.startswith("-")]
    assert set(targets) <= make_targets()
    dry_run = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert dry_run.returncode == 0, dry_run.stderr


@pytest.mark.parametrize("args", BANKING_COMMANDS, ids=lambda args: " ".join(args))
def test_banking_command_exists_with_these_options(args: list[str]) -> None:
    resolve_banking_command(args)


def test_the_documented_operations_commands_are_all_there() -> None:
    documented = {" ".join(args[:2]) for args in BANKING_COMMANDS}
    assert {"migrate", "serve --host", "audit verify", "ledger verify"} <= documented


def _curl_calls() -> list[tuple[str, str]]:
    """(method, path) of every curl line that calls the API, `$VARIABLE`s left in."""
    calls = []
    for line in code_lines():
        if not re.search(r"\bcurl\s", line) or "$BASE" not in line:
            continue
        match = re.search(r"\$BASE(/v1/[^\s\"'?]*)", line)
        assert match is not None, line
        method = re.search(r"-X (\w+)", line)
        if method is not None:
            calls.append((method.group(1), match.group(1)))
        else:
            sends_a_body = re.search(r"\s(-d|--data(-\w+)?|--json)\s", line)
            calls.append(("POST" if sends_a_body else "GET", match.group(1)))
    return calls


CURL_CALLS = _curl_calls()


def test_the_walk_through_reaches_cards_and_statements() -> None:
    paths = {path for _, path in CURL_CALLS}
    assert "/v1/accounts/$CHECKING/cards" in paths
    assert "/v1/card-authorizations" in paths
    assert "/v1/card-authorizations/$HOLD/capture" in paths
    statements = [line for line in code_lines() if "/statements/$MONTH" in line]
    for query in ('$MONTH"', "$MONTH?format=csv", "$MONTH?format=pdf"):
        assert any(query in line for line in statements), query


def test_card_network_calls_send_the_network_key_not_a_token() -> None:
    network = [
        line for line in code_lines() if re.search(r"\bcurl\s.*\$BASE/v1/card-authorizations", line)
    ]
    assert network
    for line in network:
        assert '-H "X-Network-Key: $NETWORK_KEY"' in line, line
        assert "Authorization" not in line, line
        assert "$AUTH" not in line, line


@pytest.mark.parametrize(("method", "path"), CURL_CALLS, ids=lambda value: str(value))
def test_curl_walk_through_calls_an_existing_route(method: str, path: str) -> None:
    paths = apidocs.build_schema()["paths"]
    concrete = re.sub(r"\$[A-Z_]+", "x", path)
    for template, item in paths.items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), concrete):
            assert method.lower() in item, f"{method} {template} is not an operation"
            return
    pytest.fail(f"{method} {path} matches no route")


def walk_through() -> str:
    """The README's curl walk-through, as the bash script a reader pastes."""
    start = README.index("A walk-through with `curl`")
    return README[start:].split("```bash\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_the_walk_through_runs_against_a_real_server(database_url: str, tmp_path: Path) -> None:
    """Paste the walk-through into bash against `banking serve`: every curl must get a 2xx
    (curl --fail-with-body, bash -e -o pipefail), and the answers must be what it says."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "card_network_api_key.secret").write_text(
        TEST_SECRETS["card_network_api_key"] + "\n"
    )
    script = walk_through()
    assert script.startswith("BASE=http://127.0.0.1:8000\n")
    with Server(database_url, log_path=tmp_path / "server.log") as server:
        prelude = (
            "set -euo pipefail\n"
            'curl() { command curl --fail-with-body --show-error "$@"; echo; }\n'
            f"BASE={server.base_url}\n"
        )
        completed = subprocess.run(
            ["bash", "-c", prelude + script.split("\n", 1)[1]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr + server.logs()
    out = completed.stdout
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    captured = [answer for answer in answers if answer.get("status") == "captured"]
    assert [answer["captured_amount"] for answer in captured] == [1250]
    statement = next(answer for answer in answers if "closing_balance" in answer)
    # 100.00 in, 25.00 to savings, 12.50 to the bookshop.
    assert statement["closing_balance"] == 10000 - 2500 - 1250
    assert "Corner Bookshop" in out  # in the CSV lines
    assert (tmp_path / "statement.pdf").read_bytes().startswith(b"%PDF-")
    # The standing order is scheduled for tomorrow, twelve months, nothing run yet.
    order = next(answer for answer in answers if answer.get("frequency") == "monthly")
    assert (order["status"], order["count"], order["runs"]) == ("active", 12, [])
    assert order["next_run_at"].endswith("T08:00:00Z")


def test_make_help_lists_every_target_people_run() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE)
    assert phony is not None
    internal = {"help", "install", "install-dev"}
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    listed = {line.split()[1] for line in shown.splitlines() if line.startswith("make ")}
    assert listed == set(phony.group(1).split()) - internal
