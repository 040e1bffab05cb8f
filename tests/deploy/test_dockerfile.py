"""The Dockerfile refers to files that exist and commands the CLI has.

There is no container engine in the test environment, so the image is not built here;
these checks catch what breaks a build or a start most often.
"""

from __future__ import annotations

import re

import pytest
from tools import apidocs

from tests.deploy.support import (
    ROOT,
    console_scripts,
    dockerfile_instructions,
    healthcheck_command,
    resolve_banking_command,
)

INSTRUCTIONS = dockerfile_instructions()
STAGES = max(item.stage for item in INSTRUCTIONS)
RUNTIME = [item for item in INSTRUCTIONS if item.stage == STAGES]


def _last(keyword: str) -> str:
    return [item for item in RUNTIME if item.keyword == keyword][-1].arguments


class TestBuild:
    def test_the_builder_and_the_runtime_are_separate_stages(self) -> None:
        froms = [item.arguments for item in INSTRUCTIONS if item.keyword == "FROM"]
        assert len(froms) == 2
        assert froms[0].endswith(" AS builder")
        assert froms[1].endswith(" AS runtime")
        base = next(item for item in INSTRUCTIONS if item.keyword == "ARG").arguments
        assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", base)

    def test_every_copied_path_exists_and_is_not_docker_ignored(self) -> None:
        ignored = {
            line.strip()
            for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }
        copies = [item for item in INSTRUCTIONS if item.keyword == "COPY"]
        assert copies, "nothing is copied into the builder"
        for copy in copies:
            words = [word for word in copy.arguments.split() if not word.startswith("--")]
            *sources, _destination = words
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert source.rstrip("/") not in ignored, f"{source} is in .dockerignore"

    def test_the_build_context_leaves_out_secrets_and_local_state(self) -> None:
        ignored = (ROOT / ".dockerignore").read_text().splitlines()
        for name in (".git", ".venv", "var", ".env", "deploy/.env*"):
            assert name in ignored

    def test_wheels_are_built_in_the_builder_and_installed_offline_in_the_runtime(self) -> None:
        builder_runs = " ".join(
            item.arguments for item in INSTRUCTIONS if item.stage == 1 and item.keyword == "RUN"
        )
        assert "pip wheel --wheel-dir /wheels ." in builder_runs
        runtime_runs = " ".join(item.arguments for item in RUNTIME if item.keyword == "RUN")
        assert "pip install --no-index --find-links=/wheels banking" in runtime_runs

    def test_the_runtime_stage_installs_no_compiler(self) -> None:
        runtime_runs = " ".join(item.arguments for item in RUNTIME if item.keyword == "RUN")
        for compiler in ("build-essential", "gcc", "apt-get install"):
            assert compiler not in runtime_runs


class TestRuntime:
    def test_it_runs_as_an_unprivileged_user(self) -> None:
        user = _last("USER")
        assert user.split(":")[0] not in {"root", "0"}
        assert "useradd --system" in " ".join(i.arguments for i in RUNTIME if i.keyword == "RUN")

    def test_it_is_a_production_image_that_stops_on_sigterm(self) -> None:
        assert "APP_ENV=prod" in " ".join(i.arguments for i in RUNTIME if i.keyword == "ENV")
        assert _last("STOPSIGNAL") == "SIGTERM"
        assert _last("EXPOSE") == "8000"

    def test_the_default_command_serves_two_workers_on_all_interfaces(self) -> None:
        (cmd,) = [item for item in RUNTIME if item.keyword == "CMD"]
        argv = cmd.exec_form()
        assert argv[0] == "banking"
        assert console_scripts()["banking"] == "banking.cli:app"
        path, _command = resolve_banking_command(argv[1:])
        assert path == ["serve"]
        assert argv[argv.index("--workers") + 1] == "2"
        assert argv[argv.index("--host") + 1] == "0.0.0.0"

    def test_the_health_check_probes_readiness_with_the_standard_library(self) -> None:
        argv = healthcheck_command(INSTRUCTIONS)
        assert argv[:2] == ["python", "-c"]
        compile(argv[2], "HEALTHCHECK", "exec")
        assert "curl" not in argv[2]
        match = re.search(r"http://127\.0\.0\.1:8000(/\S+?)'", argv[2])
        assert match is not None
        assert match.group(1) == "/v1/health/ready"
        assert match.group(1) in apidocs.build_schema()["paths"]

    @pytest.mark.parametrize("keyword", ["HEALTHCHECK", "CMD", "USER", "STOPSIGNAL"])
    def test_runtime_instruction_is_present_once(self, keyword: str) -> None:
        assert [item.keyword for item in RUNTIME].count(keyword) == 1
