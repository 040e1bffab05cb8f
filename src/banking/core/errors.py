"""Domain errors and their RFC 9457 problem+json rendering.

Services raise `DomainError` subclasses; nothing below the routes knows about HTTP status
codes except through these classes. Every error response (404 for unknown routes, 405,
422, 500 included) has `type`, `title`, `status`, `detail`, a stable `code` and the
`request_id`. Validation errors list each field and the reason, never the submitted value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from banking.core.db import is_connection_lost
from banking.core.logging import current_request_id, get_logger

log = get_logger("banking.errors")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "The request cannot be processed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(self.detail)


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "The resource does not exist or you may not see it."


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "The request conflicts with the current state of the resource."


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Authentication is required and has failed or has not been provided."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "You are not allowed to do this."


class InvalidRequest(DomainError):
    status = 422
    code = "invalid_request"
    title = "The request is well-formed but breaks a business rule."


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests; retry after the time given in Retry-After."


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    title = "The service is temporarily unavailable."


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    title = "The database cannot be reached right now; retry after the time given in Retry-After."


def _database_error_classes() -> tuple[type[Exception], ...]:
    """Exception classes a lost database can surface as (checked by `is_connection_lost`)."""
    classes: list[type[Exception]] = [SQLAlchemyError, OSError]
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - SQLite-only installs
        return tuple(classes)
    classes += [asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError]
    return tuple(classes)


DATABASE_ERRORS = _database_error_classes()
# Seconds a client should wait before retrying a request that met a lost database.
DATABASE_RETRY_AFTER_S = 1

# Codes for statuses raised by the framework rather than by our services.
HTTP_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", Unauthorized.title),
    403: ("forbidden", Forbidden.title),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "The method is not allowed on this resource."),
    406: ("not_acceptable", "No acceptable representation of this resource."),
    409: ("conflict", Conflict.title),
    413: ("payload_too_large", "The request body is larger than the service accepts."),
    415: ("unsupported_media_type", "Send JSON bodies with Content-Type: application/json."),
    422: ("validation_error", "The request body or parameters are invalid."),
    429: ("rate_limited", RateLimited.title),
    500: ("internal_error", "An unexpected error occurred; it has been logged."),
    503: ("service_unavailable", ServiceUnavailable.title),
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:banking:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }
    body.update(extra)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def problem_for_status(
    status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    code, title = HTTP_CODES.get(status, ("http_error", "The request failed."))
    return problem(status, code, title, detail or title, headers=headers)


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic errors as {field, reason, type}, without the offending input."""
    listed = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in {"body", "query", "path", "header", "cookie"}:
            source, *rest = location
        else:
            source, rest = "body", location
        listed.append(
            {
                "field": ".".join(rest) or source,
                "in": source,
                "reason": str(error.get("msg", "invalid")),
                "type": str(error.get("type", "invalid")),
            }
        )
    return listed


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem(
            exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, **exc.extra
        )

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors())
        names = ", ".join(sorted({error["field"] for error in errors}))
        return problem(
            422, "validation_error", HTTP_CODES[422][1], f"Invalid fields: {names}.", errors=errors
        )

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        # Framework messages are generic ("Not Found"); ours are friendlier.
        return problem_for_status(exc.status_code, None, headers=exc.headers)

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        # A lost connection is answered 503 (never a half-written state: the transaction
        # died with the connection, or it committed together with its Idempotency-Key
        # record, which the retry then finds); any other database error stays a 500.
        if not is_connection_lost(exc):
            raise exc
        log.warning(
            "database_unavailable",
            method=request.method,
            path=request.url.path,
            error_type=type(exc).__name__,
            cause=type(getattr(exc, "orig", None) or exc.__cause__ or exc).__name__,
        )
        error = DatabaseUnavailable(headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})
        return problem(error.status, error.code, error.title, error.detail, headers=error.headers)

    for error_class in DATABASE_ERRORS:
        app.add_exception_handler(error_class, on_database_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
