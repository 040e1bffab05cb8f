"""One pure-ASGI middleware for every request: id, access log, metrics, headers, limits.

It is pure ASGI (not BaseHTTPMiddleware) because it runs on every request of the money
hot path. It also turns an uncaught exception into a problem+json 500 that carries the
request id, after logging the stack trace (and reporting it to Sentry when configured).
"""

from __future__ import annotations

import itertools
import re
import secrets
import string
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from banking.core.clientaddr import TrustedProxies, parse_address
from banking.core.errors import problem_for_status
from banking.core.logging import get_logger, reset_request_id, set_request_id
from banking.core.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger("banking.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
# The interactive docs load Swagger UI and ReDoc from this server (fastapi-offline) and
# run an inline start-up script; ReDoc renders in a worker made from a blob.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class BodyTooLarge(Exception):
    pass


# Request ids: a random per-process prefix, a dot and a hexadecimal counter. Unique
# without a system call per request (uuid4 reads the OS's random source every time).
# The prefix is letters and digits only, and the separator keeps a long run of digits
# (which the log redaction would take for a card number) from ever forming.
_ID_PREFIX = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(16))
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}.{next(_ID_COUNTER):x}"


# The metric series of each (method, route, status) resolved once: `labels()` takes a lock
# and builds a key on every call.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}
# Any other method a client invents is counted as OTHER, so it cannot add series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _observe(method: str, template: str, status: int, duration: float) -> None:
    if method not in _METHODS:
        method = "OTHER"
    series = _SERIES.get((method, template, status))
    if series is None:
        series = (
            HTTP_REQUESTS.labels(method, template, str(status)),
            HTTP_LATENCY.labels(method, template),
        )
        _SERIES[(method, template, status)] = series
    series[0].inc()
    series[1].observe(duration)


_WANTED_HEADERS = frozenset(
    {b"x-request-id", b"content-length", b"content-type", b"transfer-encoding"}
)


def _csp_for(path: str) -> str:
    if path.startswith(("/docs", "/redoc")):
        return DOCS_CSP
    if path.startswith("/v1/") or path in {"/metrics", "/openapi.json"}:
        return API_CSP
    return UI_CSP


class RequestMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, trusted_proxies: str = "127.0.0.1"
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.proxies = TrustedProxies(trusted_proxies)

    def _resolve_client(self, scope: Scope) -> None:
        """Put the client's address (see core/clientaddr.py) and, behind a trusted proxy,
        the forwarded scheme into the scope, for every layer below."""
        client = scope.get("client")
        peer = client[0] if client else None
        forwarded: list[str] = []
        proto = None
        for key, value in scope["headers"]:
            if key == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif key == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
        address = self.proxies.client_address(peer, ",".join(forwarded) or None)
        scope["client"] = (address, client[1] if client else 0) if address else None
        if proto in ("http", "https") and peer is not None:
            peer_address = parse_address(peer)
            if peer_address is not None and self.proxies.trusts(peer_address):
                scope["scheme"] = proto

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        self._resolve_client(scope)
        # Only the few headers this middleware reads are decoded.
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in _WANTED_HEADERS
        }
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
        token = set_request_id(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        status = 500
        response_started = False
        is_https = scope.get("scheme") == "https"

        extra_headers = [
            (b"x-request-id", request_id.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", _csp_for(path).encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if path.startswith("/v1/"):
            extra_headers.append((b"cache-control", b"no-store"))
        if is_https:
            extra_headers.append(
                (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
            )

        # Set when the body went past the limit while the application was reading it: the
        # application's own answer (FastAPI turns a failed body read into a 400) is
        # dropped and replaced by the 413, whichever way the body arrived.
        too_large = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if too_large:
                return
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    (key, value)
                    for key, value in message.get("headers", [])
                    if key.lower() != b"server"
                ] + extra_headers
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes and not response_started:
                    too_large = True
                    raise BodyTooLarge
            return message

        try:
            early = self._reject_early(method, path, headers)
            if early is not None:
                await early(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
            if too_large:
                too_large = False
                await problem_for_status(413)(scope, receive, send_wrapper)
        except BodyTooLarge:
            too_large = False
            if not response_started:
                await problem_for_status(413)(scope, receive, send_wrapper)
        except Exception as exc:
            log.exception(
                "unhandled_error", method=method, path=path, error_type=type(exc).__name__
            )
            _report_to_sentry(exc)
            if not response_started:
                await problem_for_status(500)(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or ("static" if status < 400 else "unmatched")
            _observe(method, template, status, duration)
            state = scope.get("state", {})
            log.info(
                "request",
                method=method,
                route=template,
                path=path,
                status=status,
                duration_ms=round(duration * 1000, 2),
                user_id=state.get("user_id"),
                client_ip=state.get("client_ip") or (scope.get("client") or ("",))[0],
            )
            reset_request_id(token)

    def _reject_early(self, method: str, path: str, headers: dict[str, str]) -> Any:
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return problem_for_status(400, "Content-Length is not a number.")
            if int(length) > self.max_body_bytes:
                return problem_for_status(413)
        if method in _BODY_METHODS and path.startswith("/v1/"):
            has_body = (length is not None and int(length) > 0) or ("transfer-encoding" in headers)
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if has_body and media_type != "application/json":
                return problem_for_status(415)
        return None


def _report_to_sentry(exc: BaseException) -> None:
    try:
        import sentry_sdk
    except ImportError:  # pragma: no cover - sentry-sdk is a dependency
        return
    if sentry_sdk.is_initialized():
        sentry_sdk.capture_exception(exc)
