"""Schema fuzzing: every operation of the live server, authenticated as a member, with
bounded examples. Zero 5xx responses and no response outside the documented schema."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import PASSWORD
from tests.server import Server

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25
# These end the session the fuzzer authenticates with; fuzzing them would only make every
# later call a (documented) 401.
SESSION_ENDING = {
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/logout-all"),
    ("POST", "/v1/auth/password"),
    ("DELETE", "/v1/auth/sessions/{session_id}"),
}


def _member_token(base_url: str) -> str:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        http.post(
            "/v1/auth/signup",
            json={
                "email": "fuzz@example.com",
                "password": PASSWORD,
                "first_name": "Fuzz",
                "last_name": "Tester",
                "date_of_birth": "1985-02-03",
            },
        )
        login = http.post(
            "/v1/auth/login", json={"email": "fuzz@example.com", "password": PASSWORD}
        )
        login.raise_for_status()
        return str(login.json()["access_token"])


def test_every_operation_survives_schema_fuzzing(database_url: str, tmp_path: Path) -> None:
    with Server(database_url, log_path=tmp_path / "server.log") as server:
        token = _member_token(server.base_url)
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
        schema.config.update(base_url=server.base_url)
        headers = {"Authorization": f"Bearer {token}"}
        failures: list[str] = []
        fuzzed: set[tuple[str, str]] = set()
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SESSION_ENDING:
                continue
            fuzzed.add((operation.method.upper(), operation.path))

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=operation.as_strategy())
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)

            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
        assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + server.logs()
    # The server's own access log proves each operation was really exercised.
    seen = set()
    for line in (tmp_path / "server.log").read_text().splitlines():
        if line.startswith("{") and '"event": "request"' in line:
            event = json.loads(line)
            seen.add((event["method"], event["route"]))
    assert fuzzed, "no operations in the schema"
    assert fuzzed <= seen, f"never called: {sorted(fuzzed - seen)}"
