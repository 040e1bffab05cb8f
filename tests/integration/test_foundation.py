from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from banking.core.migrate import head_revision
from tests.factories import make_member


class TestHealth:
    async def test_liveness_answers_ok(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/health/live")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readiness_checks_the_database_at_the_migration_head(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/health/ready")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok"}
        assert head_revision() is not None

    async def test_readiness_fails_when_the_revision_is_not_head(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        app.state.migration_head = "not-a-revision"
        response = await client.get("/v1/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "not_ready"
        assert "database" in body["checks"]

    async def test_readiness_is_503_while_draining(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        app.state.draining = True
        response = await client.get("/v1/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"] == {"shutdown": "the process is shutting down"}

    @pytest.mark.parametrize(
        "settings_overrides", [{"redis_url": "redis://127.0.0.1:1/0"}], indirect=True
    )
    async def test_readiness_names_redis_when_it_is_unreachable(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/health/ready")
        assert response.status_code == 503
        assert set(response.json()["checks"]) == {"redis"}


class TestProblemDetails:
    async def test_unknown_route_is_problem_json_with_request_id(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/nope", headers={"X-Request-ID": "abc-123"})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "not_found"
        assert body["request_id"] == "abc-123"
        assert response.headers["x-request-id"] == "abc-123"
        assert {"type", "title", "status", "detail"} <= set(body)

    async def test_wrong_method_is_405_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.delete("/v1/health/live")
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"

    async def test_validation_errors_name_fields_but_never_echo_values(
        self, client: httpx.AsyncClient
    ) -> None:
        secret = "hunter2-SECRET-VALUE"
        response = await client.post(
            "/v1/auth/signup",
            json={
                "email": "not-an-email",
                "password": 12345,
                "first_name": secret,
                "last_name": "X",
                "date_of_birth": "yesterday",
                "role": "admin",
            },
        )
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        fields = {error["field"] for error in body["errors"]}
        assert {"email", "password", "date_of_birth", "role"} <= fields
        assert "12345" not in response.text
        assert "not-an-email" not in response.text
        assert all("input" not in error for error in body["errors"])

    async def test_password_is_not_echoed_when_it_fails_validation(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/v1/auth/login", json={"email": "a@example.com", "password": "bad\x00secret-pw"}
        )
        assert response.status_code == 422
        assert "secret-pw" not in response.text

    async def test_json_body_requires_json_content_type(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/auth/login",
            content=b"email=a&password=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 415
        assert response.json()["code"] == "unsupported_media_type"

    async def test_oversized_body_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/auth/login",
            content=b"{" + b" " * (2 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

    @pytest.mark.parametrize("path", ["/v1/auth/login", "/v1/auth/signup"])
    async def test_oversized_chunked_body_without_a_length_is_413(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"email": "'
            for _ in range(40):
                yield b"a" * 64 * 1024
            yield b'"}'

        response = await client.post(
            path, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "payload_too_large"

    async def test_unexpected_error_is_a_500_without_internals(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/test/crash")
        assert response.status_code == 500
        body = response.json()
        assert body["code"] == "internal_error"
        assert "SELECT" not in response.text
        assert "Traceback" not in response.text
        assert body["request_id"]

    async def test_query_numbers_are_validated(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/test/slow", params={"ms": "abc"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "ms"


class TestSecurityHeaders:
    async def test_every_response_has_security_headers_and_no_server_banner(
        self, client: httpx.AsyncClient
    ) -> None:
        for path in ("/v1/health/live", "/v1/nope"):
            response = await client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert "server" not in response.headers

    async def test_hsts_only_over_https(self, app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://bank.test") as https:
            response = await https.get("/v1/health/live")
        assert "max-age" in response.headers["strict-transport-security"]
        async with httpx.AsyncClient(transport=transport, base_url="http://bank.test") as http:
            response = await http.get("/v1/health/live")
        assert "strict-transport-security" not in response.headers

    @pytest.mark.parametrize(
        "settings_overrides", [{"cors_origins": "https://app.example"}], indirect=True
    )
    async def test_cors_only_for_configured_origins(self, client: httpx.AsyncClient) -> None:
        allowed = await client.options(
            "/v1/auth/login",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        refused = await client.options(
            "/v1/auth/login",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in refused.headers


class TestMetrics:
    async def test_metrics_count_requests_by_route_template(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/v1/health/live")
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert (
            'banking_http_requests_total{method="GET",route="/v1/health/live",status="200"}'
            in response.text
        )
        assert "banking_http_request_duration_seconds_bucket" in response.text


async def test_request_log_line_carries_id_route_status_and_user(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    member = await make_member(client, email="logline@example.com")

    def request_event(request_id: str) -> dict[str, Any]:
        lines = [line for line in capsys.readouterr().err.splitlines() if request_id in line]
        events = [json.loads(line) for line in lines]
        found = [event for event in events if event.get("event") == "request"]
        assert len(found) == 1, lines
        return found[0]

    await client.get("/v1/auth/sessions", headers={**member.headers, "X-Request-ID": "req-42"})
    event = request_event('"req-42"')
    assert event["request_id"] == "req-42"
    assert event["route"] == "/v1/auth/sessions"
    assert event["path"] == "/v1/auth/sessions"
    assert event["status"] == 200
    assert event["method"] == "GET"
    assert event["user_id"] == member.user_id
    assert event["client_ip"] == "203.0.113.7"
    assert isinstance(event["duration_ms"], float | int)
    # An anonymous request is logged without a user.
    await client.get("/v1/health/live", headers={"X-Request-ID": "req-43"})
    event = request_event('"req-43"')
    assert event["user_id"] is None


class TestApiPathsNeverFallThroughToTheWebUi:
    async def test_unknown_api_path_with_post_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/no-such-thing", json={})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    async def test_known_api_path_with_wrong_method_is_405(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/v1/auth/login", json={})
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"

    async def test_every_405_names_the_allowed_methods(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        methods_of = {
            path: {method.upper() for method in operations}
            for path, operations in app.openapi()["paths"].items()
        }
        methods_of["/metrics"] = {"GET"}
        api_paths = [path for path in methods_of if path.startswith(("/v1/", "/metrics"))]
        assert len(api_paths) >= 40
        for template in api_paths:
            path = re.sub(r"\{[^}]+\}", "x", template)
            wrong = next(
                method
                for method in ("PUT", "PATCH", "DELETE", "POST")
                if method not in methods_of[template]
            )
            response = await client.request(wrong, path)
            assert response.status_code == 405, (wrong, template, response.text)
            assert response.json()["code"] == "method_not_allowed"
            allowed = {method.strip() for method in response.headers["allow"].split(",")}
            # Every route whose template matches the path counts (`/v1/accounts/lookup`
            # is also an `/v1/accounts/{account_id}`); GET routes also answer HEAD.
            expected = set().union(
                *(
                    methods
                    for other, methods in methods_of.items()
                    if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(other)), path)
                )
            )
            assert allowed - {"HEAD"} == expected, template

    async def test_the_web_ui_is_served_at_the_root(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/")
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]
