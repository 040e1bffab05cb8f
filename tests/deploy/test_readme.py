"""Every command README shows is real: `make` targets exist in the Makefile, `banking`
command lines parse against the CLI, and the curl walk-through calls existing routes."""

from __future__ import annotations

import re
import subprocess

import pytest

from banking import apidocs
from tests.deploy.support import ROOT, resolve_banking_command, split_command

README = (ROOT / "README.md").read_text()
# Documented ahead of the branch that adds them; checked as soon as they exist.
PENDING_COMMANDS = {("ledger", "verify")}
PENDING_ROUTE_PREFIXES = ("/v1/accounts", "/v1/transfers")
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
    try:
        resolve_banking_command(args)
    except LookupError:
        if tuple(args[:2]) in PENDING_COMMANDS:
            pytest.skip(f"`banking {' '.join(args[:2])}` arrives with its domain's branch")
        raise


def test_the_documented_operations_commands_are_all_there() -> None:
    documented = {" ".join(args[:2]) for args in BANKING_COMMANDS}
    assert {"migrate", "serve --host", "audit verify", "ledger verify"} <= documented


def _curl_calls() -> list[tuple[str, str]]:
    calls = []
    for line in code_lines():
        if not line.startswith(("curl ", "TOKEN=$(curl", "CHECKING=$(curl", "SAVINGS=$(curl")):
            continue
        match = re.search(r"\$BASE(/v1/[^\s\"'?]*)", line)
        assert match is not None, line
        method = re.search(r"-X (\w+)", line)
        calls.append((method.group(1) if method else "GET", match.group(1)))
    return calls


@pytest.mark.parametrize(("method", "path"), _curl_calls(), ids=lambda value: str(value))
def test_curl_walk_through_calls_an_existing_route(method: str, path: str) -> None:
    paths = apidocs.build_schema()["paths"]
    concrete = re.sub(r"\$[A-Z_]+", "x", path)
    for template, item in paths.items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), concrete):
            assert method.lower() in item, f"{method} {template} is not an operation"
            return
    if path.startswith(PENDING_ROUTE_PREFIXES):
        pytest.skip(f"{path} arrives with its domain's branch")
    pytest.fail(f"{method} {path} matches no route")
