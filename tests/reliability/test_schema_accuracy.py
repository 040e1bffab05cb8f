"""The published OpenAPI schema says exactly what validation accepts: every request a
schema-driven fuzzer generates as valid ("positive" data) passes validation, so a refusal
is a business answer (`weak_password`, `not_found`, ...), never `validation_error`.

Every operation of the live server is fuzzed with positive data, authenticated as a
member, with ids aimed at the member's own account half of the time: one pytest item per
operation, in one class per resource, each with a fresh funded account (schema_fuzzing.py
says how pytest-xdist spreads them).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.reliability.schema_fuzzing import (
    FuzzServer,
    Member,
    Operation,
    assert_every_operation_is_fuzzed,
    every_other,
    operation_classes,
    operation_id,
    steer,
)

# As in test_fuzz.py: seconds per operation, far more when Hypothesis shrinks a failure.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLES_PER_OPERATION = 20
# What JSON Schema cannot state: an account number's check digit (its 12 digits are in
# the schema's pattern; the description names the check digit).
# Nor that an email's domain must not be a special-use name (the field's description says it).
NOT_EXPRESSIBLE = ("valid check digit", "special-use or reserved name")


def _whole_float(body: Any, field: str) -> bool:
    """JSON Schema 2020-12 counts 2347.0 as an integer; the API refuses it on purpose (a
    float in a money field may carry a silent rounding), and the field's description
    says so. The only divergence allowed."""
    value: Any = body
    # A nested field ("items.0.amount", a batch item's) is followed part by part.
    for part in field.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return isinstance(value, float) and value.is_integer()


class SchemaLooserThanValidation(AssertionError):
    pass


def _check(fuzz_server: FuzzServer, member: Member, operation: Operation) -> None:
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
        elif idempotent:
            case.headers = {**(case.headers or {}), "Idempotency-Key": uuid.uuid4().hex}
        response = case.call(headers=member.headers, timeout=10)
        if response.status_code == 422:
            body = response.json()
            errors = body.get("errors") or []
            reasons = [error.get("reason", "") for error in errors]
            expressible = [
                error
                for error in errors
                if not any(part in error.get("reason", "") for part in NOT_EXPRESSIBLE)
                and not (
                    error.get("type") == "int_type" and _whole_float(case.body, error["field"])
                )
            ]
            if body.get("code") == "validation_error" and (expressible or not reasons):
                raise SchemaLooserThanValidation(
                    json.dumps(
                        {
                            "body": case.body if not isinstance(case.body, bytes) else None,
                            "query": case.query,
                            "path": case.path_parameters,
                            "errors": body.get("errors"),
                        },
                        default=str,
                    )[:1500]
                )

    try:
        run()
    except SchemaLooserThanValidation as exc:
        raise AssertionError(f"{operation_id(operation)}: {exc}") from exc


globals().update(
    operation_classes(
        "test_positive_data_from_the_schema_always_passes_validation",
        _check,
        "Each operation of this resource: positive data never meets `validation_error`.",
    )
)


def test_every_operation_of_the_live_schema_is_checked(fuzz_server: FuzzServer) -> None:
    assert_every_operation_is_fuzzed(fuzz_server.spec)
