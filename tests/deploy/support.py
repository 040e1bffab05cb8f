"""Readers for the deployment files, shared by the tests in this package."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main
import yaml

from banking.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int

    def exec_form(self) -> list[str]:
        """The arguments of a JSON-array instruction (CMD ["a", "b"])."""
        value = json.loads(self.arguments)
        assert isinstance(value, list), self.arguments
        return [str(item) for item in value]


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with continuation lines joined; `stage` counts FROM lines (0 = before)."""
    joined: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        joined.append(pending + line)
        pending = ""
    instructions = []
    stage = 0
    for line in joined:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return instructions


def healthcheck_command(instructions: list[Instruction]) -> list[str]:
    (check,) = [item for item in instructions if item.keyword == "HEALTHCHECK"]
    _options, _, command = check.arguments.partition("CMD ")
    return Instruction("CMD", command.strip(), check.stage).exec_form()


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def dotenv_names(path: Path) -> list[str]:
    """Variable names a .env-style file sets or shows commented out (`# NAME=...`)."""
    names = []
    for line in path.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line.strip())
        if match:
            names.append(match.group(1))
    return names


def console_scripts() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts: dict[str, str] = project["project"]["scripts"]
    return scripts


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def resolve_banking_command(args: list[str]) -> tuple[list[str], Any]:
    """Walk `banking <group> <command> ...` to the command it names and parse the
    remaining options and arguments against it (without running it). Raises a usage
    error (or `LookupError` for an unknown command) when the line is wrong."""
    command: Any = typer.main.get_command(cli_app)
    path: list[str] = []
    rest = list(args)
    while _is_group(command) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            raise LookupError(f"`banking {' '.join([*path, name])}` is not a command")
        path.append(name)
        command = sub
    if _is_group(command):
        raise LookupError(f"`banking {' '.join(path)}` needs a subcommand")
    context = command.make_context(" ".join(["banking", *path]), rest)
    context.close()
    return path, command


def split_command(line: str) -> list[str]:
    return shlex.split(line, comments=True)
