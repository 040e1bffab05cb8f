"""The OpenAPI document, with every error response the API can give documented as
problem+json, so clients (and the schema fuzzer) know each status an operation may return."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse, Response

from banking.core.errors import HTTP_CODES, PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "description": "Validation errors, one per field (never the submitted value).",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "in": {"type": "string"},
                    "reason": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_BODY_METHODS = {"post", "put", "patch"}
_PUBLIC_PREFIXES = ("/v1/health",)


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    if path.startswith(_PUBLIC_PREFIXES):
        return {503} if path.endswith("/ready") else set()
    statuses = {401, 422, 429}
    has_body = "requestBody" in operation
    if has_body or method in _BODY_METHODS:
        statuses |= {400, 409, 413, 415}
    if operation.get("security"):
        statuses |= {403, 404}
    if "{" in path:
        statuses.add(404)
    return statuses


def _problem_response(status: int) -> dict[str, Any]:
    _, title = HTTP_CODES.get(status, ("http_error", "The request failed."))
    return {
        "description": title,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


API_PRIMER = """\
Accounts, a double-entry ledger, transfers, debit cards and monthly statements.
Everything below is JSON over HTTPS under `/v1`.

### Authentication

Sign up with `POST /v1/auth/signup`, then exchange email and password for tokens:

```http
POST /v1/auth/login
Content-Type: application/json

{"email": "ada@example.com", "password": "correct horse battery staple"}
```

```json
{"access_token": "eyJhbGciOiJIUzI1NiIs...", "refresh_token": "Xq3v...",
 "token_type": "bearer", "expires_in": 900}
```

Send the access token on every other call as `Authorization: Bearer <access_token>`.
When it expires (401 `invalid_token`), call `POST /v1/auth/refresh` with the refresh
token: each refresh token works once and is replaced; presenting a used one again ends
the whole session. The web bank keeps its refresh token in an HttpOnly cookie instead
(`"refresh_cookie": true` at login).

### Amounts are integers in minor units

Every `amount` and balance is an integer in the currency's smallest unit, as in
Stripe's API: `2550` in USD is $25.50, `2550` in JPY is ¥2,550, `2550` in KWD is
KWD 2.550. There are no floats anywhere. An account has one ISO 4217 `currency`;
money moves only between accounts of the same currency.

### Money-moving calls take an Idempotency-Key

Deposits, withdrawals, transfers and card authorizations need an `Idempotency-Key`
header (1 to 255 printable ASCII characters; a new UUID per movement is best):

```http
POST /v1/transfers
Authorization: Bearer eyJhbGciOiJIUzI1NiIs...
Idempotency-Key: 6f1c9b1e-2c57-4d8e-9a53-0d2f6bfa7c11
Content-Type: application/json

{"source_account_id": "0b6c...", "target_account_number": "123456789012",
 "amount": 4250, "description": "Dinner"}
```

Retry a request that timed out, failed on the network or answered 5xx **with the same
key and the same body**: the bank applies it at most once and replays the first answer
(header `Idempotent-Replayed: true`). The same key with a different body is a 422; a
retry while the first attempt is still running is a 409 `idempotency_key_in_flight`
(wait and retry). Without the header the call is a 400 `idempotency_key_required`.

### Errors

Every error is an RFC 9457 problem+json body with a stable `code` to branch on and the
`request_id` to quote to support:

```json
{"type": "urn:banking:problem:insufficient_funds",
 "title": "The source account's available balance is lower than the amount.",
 "status": 409, "code": "insufficient_funds",
 "detail": "The source account's available balance is lower than the amount.",
 "request_id": "k3n9x2m4p7q1w8e5.1a", "entry_id": "9d2e..."}
```

Validation errors (422 `validation_error`) list each field in `errors`
(`field`, `reason`), never the value sent. A refused movement (insufficient funds,
frozen account, limits) is recorded as a declined entry and listed with
`GET /v1/accounts/{id}/transactions?status=declined`. 429 answers carry `Retry-After`.

### Lists

Lists answer `{"items": [...], "next_cursor": "..."}`. Pass `next_cursor` back as
`cursor` for the next page; it is `null` on the last page. `limit` sets the page size.
"""

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _integer_bounds(node: Any) -> None:
    """Bounds of integer fields as JSON integers (`1`, not `1.0`): with a float bound a
    schema-driven generator offers `1.0`, which the strict integers refuse on purpose."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in _BOUNDS:
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = int(value)
        for child in node.values():
            _integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _integer_bounds(child)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            # A staff operation is listed once, under "admin", even when its domain's
            # router tags it too (the docs would otherwise show it twice).
            if path.startswith("/v1/admin/") and "admin" in operation.get("tags", []):
                operation["tags"] = ["admin"]
            responses = operation["responses"]
            responses.pop("422", None)
            for status in sorted(_statuses(path, method, operation)):
                responses.setdefault(str(status), _problem_response(status))
    _integer_bounds(schema)
    app.openapi_schema = schema
    return schema


# Swagger UI and ReDoc come with the fastapi-offline package (MIT; Swagger UI Apache-2.0,
# ReDoc MIT), served from this server so the docs work with no internet access.
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
OFFLINE_STATIC_URL = "/static-offline-docs"
# ReDoc's sidebar footer shows a logo from its CDN; offline (and under our CSP) that is a
# failed load, so the bundle is served with the logo as an inline image instead.
_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_INLINE_LOGO = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'/%3E"


@cache
def redoc_bundle() -> bytes:
    source = (DOCS_ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")
    return source.replace(_REDOC_LOGO, _INLINE_LOGO).encode()


def install_openapi(app: FastAPI) -> None:
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]

    @app.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url=f"{OFFLINE_STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/docs-assets/redoc.standalone.js", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(
            redoc_bundle(),
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )
