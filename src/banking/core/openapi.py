"""The OpenAPI document, with every error response the API can give documented as
problem+json, so clients (and the schema fuzzer) know each status an operation may return."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
            responses = operation["responses"]
            responses.pop("422", None)
            for status in sorted(_statuses(path, method, operation)):
                responses.setdefault(str(status), _problem_response(status))
    _integer_bounds(schema)
    app.openapi_schema = schema
    return schema


def install_openapi(app: FastAPI) -> None:
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
