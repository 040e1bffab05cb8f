"""What the two schema-fuzz modules share (test_fuzz.py, test_schema_accuracy.py).

The operations to fuzz are read from the app's own OpenAPI schema when the tests are
collected, and each module fuzzes one operation per pytest item. The items sit in one
test class per resource (`/v1/cards/...` in `TestCards`, `/v1/admin/accounts/...` in
`TestAdminAccounts`): `make test` runs pytest-xdist with `--dist loadscope`, which keeps
a class on one worker, so the classes spread across the workers. The live server is one
per worker, shared by both modules (the `fuzz_server` fixture in conftest.py). Each class
fuzzes as a member of its own (`fuzz_member`: signing up and logging in cost two
production-strength password hashes) and each item with a new funded account, so an
operation that freezes or closes an account cannot change what a later item meets.

Each module also has a test that the live server's schema has no operation outside
`OPERATIONS` and the two exclusions, so a new route cannot escape fuzzing.
"""

from __future__ import annotations

import functools
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis

from banking.app import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD
from tests.server import Server, wait_until

Operation = tuple[str, str]

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
EXCLUDED = SESSION_ENDING | STREAMING
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def app_schema() -> dict[str, Any]:
    """The app's OpenAPI schema, built once per test process (callers must not change it)."""
    return create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()


def operations_of(spec: dict[str, Any]) -> list[Operation]:
    """Every operation of an OpenAPI schema, in the schema's order."""
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    ]


OPERATIONS = [operation for operation in operations_of(app_schema()) if operation not in EXCLUDED]


def resource_class_name(path: str) -> str:
    """`/v1/card-authorizations/{id}` -> `TestCardAuthorizations`; admin routes keep their
    resource too: `/v1/admin/accounts/{id}/freeze` -> `TestAdminAccounts`."""
    parts = path.removeprefix("/v1/").split("/")
    words = parts[:2] if parts[0] == "admin" and len(parts) > 1 else parts[:1]
    return "Test" + "".join(part.title() for word in words for part in word.split("-"))


def operation_id(operation: Operation) -> str:
    return f"{operation[0]} {operation[1]}"


def operation_classes(
    name: str, fuzz: Callable[[FuzzServer, Member, Operation], None], doc: str
) -> dict[str, type]:
    """One class per resource, each with a test `name` parametrized by the resource's
    operations that calls `fuzz(server, member, operation)` with the class's member and a
    new funded account; a module puts the classes in its globals."""

    def test_class(class_name: str, operations: list[Operation]) -> type:
        @pytest.mark.parametrize("operation", operations, ids=operation_id)
        def test(
            self: object,
            fuzz_server: FuzzServer,
            fuzz_member: dict[str, str],
            operation: Operation,
        ) -> None:
            fuzz(
                fuzz_server, Member(fuzz_member, fuzz_server.funded_account(fuzz_member)), operation
            )

        test.__name__ = name
        test.__qualname__ = f"{class_name}.{name}"
        return type(class_name, (), {"__doc__": doc, "__module__": fuzz.__module__, name: test})

    groups: dict[str, list[Operation]] = {}
    for operation in OPERATIONS:
        groups.setdefault(resource_class_name(operation[1]), []).append(operation)
    return {
        class_name: test_class(class_name, operations) for class_name, operations in groups.items()
    }


def assert_every_operation_is_fuzzed(spec: dict[str, Any]) -> None:
    """The live server's schema has nothing outside `OPERATIONS` and the exclusions, and
    each exclusion is still a real operation."""
    live = set(operations_of(spec))
    fuzzed = set(OPERATIONS)
    assert not live - EXCLUDED - fuzzed, f"not fuzzed: {sorted(live - EXCLUDED - fuzzed)}"
    assert not fuzzed - live, f"fuzzed but gone: {sorted(fuzzed - live)}"
    assert not EXCLUDED - live, f"excluded but gone: {sorted(EXCLUDED - live)}"
    classes = {resource_class_name(path) for _, path in OPERATIONS}
    assert len(classes) > 1, "one class: pytest-xdist would not spread the operations"


@dataclass
class Member:
    """Who an item fuzzes as: the class's member, and the item's own funded account."""

    headers: dict[str, str]
    account: dict[str, Any]


@dataclass
class FuzzServer:
    """A live server, its schema as schemathesis reads it, and its access log."""

    server: Server
    spec: dict[str, Any]
    schema: Any

    @classmethod
    def start(cls, server: Server) -> FuzzServer:
        spec = httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
        schema.config.update(base_url=server.base_url)
        return cls(server, spec, schema)

    def operation(self, operation: Operation) -> Any:
        method, path = operation
        return self.schema[path][method]

    def takes_idempotency_key(self, operation: Operation) -> bool:
        method, path = operation
        parameters = self.spec["paths"][path][method.lower()].get("parameters", [])
        return any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters)

    def new_member(self) -> dict[str, str]:
        """A member of their own, signed up and logged in: their Authorization header."""
        email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        with httpx.Client(base_url=self.server.base_url, timeout=10) as http:
            http.post(
                "/v1/auth/signup",
                json={
                    "email": email,
                    "password": PASSWORD,
                    "first_name": "Fuzz",
                    "last_name": "Tester",
                    "date_of_birth": "1985-02-03",
                },
            ).raise_for_status()
            login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            login.raise_for_status()
            return {"Authorization": f"Bearer {login.json()['access_token']}"}

    def funded_account(self, headers: dict[str, str]) -> dict[str, Any]:
        """A new checking account of the member's, with 10,000.00 on it. Returns once the
        deposit is in the access log, so a later `log_size()` is past it."""
        logged_before = self.log_size()
        with httpx.Client(base_url=self.server.base_url, timeout=10, headers=headers) as http:
            account = http.post("/v1/accounts", json={"type": "checking"})
            account.raise_for_status()
            deposit = http.post(
                f"/v1/accounts/{account.json()['id']}/deposits",
                json={"amount": 1_000_000},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            deposit.raise_for_status()
        request_id = deposit.headers["x-request-id"]
        wait_until(
            lambda: any(
                event.get("request_id") == request_id
                for event in self.requests_since(logged_before)
            ),
            timeout_s=10,
            what=f"request {request_id} in {self.server.log_path}",
        )
        return dict(account.json())

    def log_size(self) -> int:
        return self.server.log_path.stat().st_size

    def requests_since(self, offset: int) -> list[dict[str, Any]]:
        """The access log's request events written after byte `offset`."""
        with self.server.log_path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        return [
            json.loads(line)
            for line in lines
            if line.startswith("{") and '"event": "request"' in line
        ]

    def wait_for_request(self, offset: int, operation: Operation, *, succeeded: bool) -> None:
        """The server logged a call of `operation` (a 2xx one if `succeeded`) after `offset`.
        The access log line is written after the answer is sent, hence the wait."""

        def logged() -> bool:
            return any(
                (event["method"], event["route"]) == operation
                and (not succeeded or 200 <= event["status"] < 300)
                for event in self.requests_since(offset)
            )

        what = f"a {'2xx ' if succeeded else ''}{operation_id(operation)} in {self.server.log_path}"
        wait_until(logged, timeout_s=10, what=what)


def steer(case: schemathesis.Case, account: dict[str, Any], *, idempotent: bool) -> None:
    """Aim the example at the member's own account, with a valid key where one is taken."""
    if idempotent:
        case.headers = {**(case.headers or {}), "Idempotency-Key": uuid.uuid4().hex}
    if case.path_parameters and "account_id" in case.path_parameters:
        case.path_parameters["account_id"] = account["id"]
    if isinstance(case.body, dict):
        for field in ("source_account_id", "account_id"):
            if field in case.body:
                case.body[field] = account["id"]


def every_other() -> Callable[[], bool]:
    """True on the first call and every second one after it: which examples are steered."""
    turns = itertools.count()
    return lambda: next(turns) % 2 == 0
