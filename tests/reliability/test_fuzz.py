"""Schema fuzzing: every operation of the live server, authenticated as a member, with
bounded examples. Zero 5xx responses and no response outside the documented schema.

Half the examples are steered to reach the business logic rather than stop at the first
check: money POSTs carry a fresh valid Idempotency-Key (the other half keep whatever header
the fuzzer generated, often none or an invalid one), and account ids in the path or body
name the fuzzing member's own funded account instead of a random (unknown) one. A
self-test proves the checks flag an undocumented status and a body that breaks the schema.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from pathlib import Path
from typing import Any

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

from banking.app import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD
from tests.server import Server

# Every operation, 25 examples each: minutes on a loaded machine (CI runs four test
# workers on two cores), well past the default timeout, which would stop Hypothesis
# mid-example and be reported as a flaky test instead of as what it is.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25
MONEY_MOVED = {
    ("POST", "/v1/accounts/{account_id}/deposits"),
    ("POST", "/v1/accounts/{account_id}/withdrawals"),
}
# These end the session the fuzzer authenticates with; fuzzing them would only make every
# later call a (documented) 401.
SESSION_ENDING = {
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/logout-all"),
    ("POST", "/v1/auth/password"),
    ("DELETE", "/v1/auth/sessions/{session_id}"),
}
# Answers that never end (Server-Sent Events): read over real HTTP by their own tests
# (tests/reliability/test_webhook_delivery.py), not fuzzed into a read timeout.
STREAMING = {("GET", "/v1/events/stream")}


def _fuzz_member(base_url: str) -> tuple[str, dict[str, Any]]:
    """The fuzzing member's token and their funded account."""
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
        token = str(login.json()["access_token"])
        headers = {"Authorization": f"Bearer {token}"}
        account = http.post("/v1/accounts", json={"type": "checking"}, headers=headers)
        account.raise_for_status()
        deposit = http.post(
            f"/v1/accounts/{account.json()['id']}/deposits",
            json={"amount": 1_000_000},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        deposit.raise_for_status()
        return token, account.json()


def _takes_idempotency_key(spec: dict[str, Any], method: str, path: str) -> bool:
    parameters = spec["paths"][path][method.lower()].get("parameters", [])
    return any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters)


def _steer(case: schemathesis.Case, account: dict[str, Any], *, idempotent: bool) -> None:
    """Aim the example at the member's own account, with a valid key where one is taken."""
    if idempotent:
        case.headers = {**(case.headers or {}), "Idempotency-Key": uuid.uuid4().hex}
    if case.path_parameters and "account_id" in case.path_parameters:
        case.path_parameters["account_id"] = account["id"]
    if isinstance(case.body, dict):
        for field in ("source_account_id", "account_id"):
            if field in case.body:
                case.body[field] = account["id"]


def _fuzzer(
    operation: Any, headers: dict[str, str], account: dict[str, Any], *, idempotent: bool
) -> Any:
    turns = itertools.count()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        if next(turns) % 2 == 0:
            _steer(case, account, idempotent=idempotent)
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)

    return run


def test_every_operation_survives_schema_fuzzing(database_url: str, tmp_path: Path) -> None:
    with Server(database_url, log_path=tmp_path / "server.log") as server:
        token, account = _fuzz_member(server.base_url)
        spec = httpx.get(f"{server.base_url}/openapi.json").json()
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
        schema.config.update(base_url=server.base_url)
        headers = {"Authorization": f"Bearer {token}"}
        failures: list[str] = []
        fuzzed: set[tuple[str, str]] = set()
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SESSION_ENDING | STREAMING:
                continue
            fuzzed.add((operation.method.upper(), operation.path))
            run = _fuzzer(
                operation,
                headers,
                account,
                idempotent=_takes_idempotency_key(spec, operation.method, operation.path),
            )
            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
        assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + server.logs()
    # The server's own access log proves each operation was really exercised.
    seen = set()
    succeeded = set()
    for line in (tmp_path / "server.log").read_text().splitlines():
        if line.startswith("{") and '"event": "request"' in line:
            event = json.loads(line)
            seen.add((event["method"], event["route"]))
            if 200 <= event["status"] < 300:
                succeeded.add((event["method"], event["route"]))
    assert fuzzed, "no operations in the schema"
    assert fuzzed <= seen, f"never called: {sorted(fuzzed - seen)}"
    # Steering works: fuzzed money movements got past validation and moved money.
    assert succeeded >= MONEY_MOVED, f"never succeeded: {sorted(MONEY_MOVED - succeeded)}"


class TestTheChecksThemselves:
    """The fuzz test is only as good as its checks: fed made-up answers for a real
    operation of our schema, they must refuse an undocumented status and a broken body."""

    @staticmethod
    def _verdict(status: int, body: Any, content_type: str = "application/json") -> list[str]:
        app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
        schema = schemathesis.openapi.from_dict(app.openapi())
        schema.config.update(base_url="http://127.0.0.1:9")
        case = schema["/v1/balances"]["GET"].Case()
        response = httpx.Response(
            status,
            content=json.dumps(body).encode(),
            headers={"content-type": content_type},
            request=httpx.Request("GET", "http://127.0.0.1:9/v1/balances"),
        )
        response.elapsed = dt.timedelta(milliseconds=1)
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseException as exc:  # schemathesis raises an exception group of failures
            return sorted({type(failure).__name__ for failure in getattr(exc, "exceptions", [exc])})
        return []

    def test_an_undocumented_status_is_a_failure(self) -> None:
        assert self._verdict(418, {"teapot": True}) == ["UndefinedStatusCode"]

    def test_a_body_outside_the_schema_is_a_failure(self) -> None:
        assert "JsonSchemaError" in self._verdict(200, {"items": "not a list"})

    def test_documented_answers_pass(self) -> None:
        ok = {"items": [], "next_cursor": None, "as_of": "2026-01-01T00:00:00Z"}
        assert self._verdict(200, ok) == []
        problem = {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "Sign in.",
            "code": "not_authenticated",
            "request_id": "r1",
        }
        assert self._verdict(401, problem, "application/problem+json") == []
