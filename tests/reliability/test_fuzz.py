"""Schema fuzzing: every operation of the live server, authenticated as a member, with
bounded examples. Zero 5xx responses and no response outside the documented schema.

Half the examples are steered to reach the business logic rather than stop at the first
check: money POSTs carry a fresh valid Idempotency-Key (the other half keep whatever header
the fuzzer generated, often none or an invalid one), and account ids in the path or body
name the fuzzing member's own funded account instead of a random (unknown) one. A
self-test proves the checks flag an undocumented status and a body that breaks the schema.

One pytest item per operation, in one class per resource, so pytest-xdist spreads them
(schema_fuzzing.py says how); each item fuzzes with a fresh funded account.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
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

from tests.reliability.schema_fuzzing import (
    OPERATIONS,
    FuzzServer,
    Member,
    Operation,
    app_schema,
    assert_every_operation_is_fuzzed,
    every_other,
    operation_classes,
    operation_id,
    steer,
)

# One operation's 25 examples take seconds; a failing one is then shrunk by Hypothesis,
# many more calls on a loaded machine (CI runs four test workers on two cores). The
# timeout would stop Hypothesis mid-example and be reported as a flaky test instead of
# as what it is, so it is well past that.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

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


def _fuzz(fuzz_server: FuzzServer, member: Member, operation: Operation) -> None:
    idempotent = fuzz_server.takes_idempotency_key(operation)
    steered = every_other()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=fuzz_server.operation(operation).as_strategy())
    def run(case: schemathesis.Case) -> None:
        if steered():
            steer(case, member.account, idempotent=idempotent)
        case.call_and_validate(headers=member.headers, checks=CHECKS, timeout=10)

    logged_before = fuzz_server.log_size()
    try:
        run()
    except Exception as exc:
        raise AssertionError(
            f"{operation_id(operation)}: {exc}\n\nserver log:\n{fuzz_server.server.logs()}"
        ) from exc
    # The server's own access log proves the operation was really exercised, and for the
    # money movements that steering works: they got past validation and moved money.
    fuzz_server.wait_for_request(logged_before, operation, succeeded=operation in MONEY_MOVED)


globals().update(
    operation_classes(
        "test_operation_survives_schema_fuzzing",
        _fuzz,
        "Each operation of this resource, fuzzed: no 5xx, nothing outside the schema.",
    )
)


def test_every_operation_of_the_live_schema_is_fuzzed(fuzz_server: FuzzServer) -> None:
    assert_every_operation_is_fuzzed(fuzz_server.spec)
    assert set(OPERATIONS) >= MONEY_MOVED


class TestTheChecksThemselves:
    """The fuzz test is only as good as its checks: fed made-up answers for a real
    operation of our schema, they must refuse an undocumented status and a broken body."""

    @staticmethod
    def _verdict(status: int, body: Any, content_type: str = "application/json") -> list[str]:
        schema = schemathesis.openapi.from_dict(copy.deepcopy(app_schema()))
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
