"""The published OpenAPI schema says exactly what validation accepts: every request a
schema-driven fuzzer generates as valid ("positive" data) passes validation, so a refusal
is a business answer (`weak_password`, `not_found`, ...), never `validation_error`.

Every operation of the live server is fuzzed with positive data, authenticated as a
member, with ids aimed at the member's own account half of the time.
"""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.reliability.test_fuzz import (
    SESSION_ENDING,
    STREAMING,
    _fuzz_member,
    _steer,
    _takes_idempotency_key,
)
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

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


def _checker(
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
        elif idempotent:
            case.headers = {**(case.headers or {}), "Idempotency-Key": uuid.uuid4().hex}
        response = case.call(headers=headers, timeout=10)
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

    return run


def test_positive_data_from_the_schema_always_passes_validation(
    database_url: str, tmp_path: Path
) -> None:
    with Server(database_url, log_path=tmp_path / "server.log") as server:
        token, account = _fuzz_member(server.base_url)
        spec = httpx.get(f"{server.base_url}/openapi.json").json()
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
        schema.config.update(base_url=server.base_url)
        headers = {"Authorization": f"Bearer {token}"}
        failures: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SESSION_ENDING | STREAMING:
                continue
            run = _checker(
                operation,
                headers,
                account,
                idempotent=_takes_idempotency_key(spec, operation.method, operation.path),
            )
            try:
                run()
            except SchemaLooserThanValidation as exc:
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path}: {exc!r}"[:1500])
        assert not failures, f"{len(failures)} operations:\n\n" + "\n\n".join(failures)
