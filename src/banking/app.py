"""The application factory: settings, logging, database, middleware, routers, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import Receive, Scope, Send

from banking import __version__
from banking.audit import sealer as audit_sealer
from banking.core import (
    fastparams,
    idempotency_purge,
    jobs,
    ratelimit,
    reads,
    replica,
    routecache,
    security,
)
from banking.core.config import Settings, get_settings
from banking.core.db import Database, utcnow
from banking.core.errors import install_error_handlers
from banking.core.logging import configure_logging, get_logger
from banking.core.metrics import render_latest
from banking.core.middleware import RequestMiddleware
from banking.core.migrate import head_revision, migration_problem, refusal
from banking.core.openapi import API_PRIMER, install_openapi
from banking.identity.deps import authenticate
from banking.ledger import sweeper as hold_sweeper

log = get_logger("banking.app")
WEB_DIR = Path(__file__).resolve().parent / "web"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class WebFiles(StaticFiles):
    """The web UI at `/`, which must not answer for API paths: an unknown API path is a
    404 and a known one with the wrong method a 405, both as problem+json."""

    def __init__(self, app: FastAPI, **options: Any) -> None:
        super().__init__(**options)
        self.api = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == "/v1" or path.startswith(("/v1/", "/metrics")):
            routes = [route for route in self.api.router.routes if not isinstance(route, Mount)]
            if not any(route.matches(scope)[0] is not Match.NONE for route in routes):
                raise StarletteHTTPException(404)
            allowed = [
                method
                for method in _METHODS
                if any(
                    route.matches({**scope, "method": method})[0] is Match.FULL for route in routes
                )
            ]
            # RFC 9110: a 405 names the methods the resource does support.
            raise StarletteHTTPException(405, headers={"Allow": ", ".join(allowed)})
        await super().__call__(scope, receive, send)


def _init_sentry(settings: Settings) -> None:
    if not settings.sentry_dsn:
        return
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.app_env.value,
        release=__version__,
        send_default_pii=False,
        # Frame locals and request bodies can hold passwords, tokens and card data.
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,
    )


def _watch_for_shutdown(app: FastAPI) -> None:
    """Flip readiness to 503 as soon as SIGTERM/SIGINT arrives, then let uvicorn drain."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(number: int, frame: Any, previous: Any = previous) -> None:
            app.state.draining = True
            if callable(previous):
                previous(number, frame)

        with contextlib.suppress(ValueError):  # not the main thread (e.g. tests)
            signal.signal(signum, handler)


async def _check_database(db: Database) -> None:
    try:
        async with asyncio.timeout(db.settings.db_connect_timeout_s + 1):
            async with db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise RuntimeError(
            f"database unreachable at start-up ({type(exc).__name__}); check DATABASE_URL"
        ) from exc


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    problem = await migration_problem(settings.database_url)
    if problem is not None:
        # `banking serve` checks this first and exits with this one line; other servers
        # get it as the start-up error.
        raise RuntimeError(refusal(problem))
    db = Database(settings)
    await _check_database(db)
    app.state.db = db
    # One clock for the routes and the ledger (tests move `app.state.clock`).
    db.clock = lambda: app.state.clock()
    app.state.draining = False
    app.state.migration_head = head_revision()
    _watch_for_shutdown(app)
    for hook in app.state.startup_hooks:
        await hook(app)
    # Everything built so far (modules, schemas, routes, statements) lives as long as the
    # app: move it out of the cyclic collector's sight, so that a full collection walks
    # only what requests allocate (about 1 ms instead of about 80 ms per collection: the
    # pauses were a large share of a transfer's CPU and its tail latency).
    gc.collect()
    gc.freeze()
    log.info(
        "started", env=settings.app_env.value, database=db.engine.dialect.name, version=__version__
    )
    try:
        yield
    finally:
        app.state.draining = True
        gc.unfreeze()
        # Every periodic job finishes its tick in flight (or is cancelled after a bound)
        # before anything it uses closes.
        with contextlib.suppress(Exception):
            await jobs.stop_all(app)
        for hook in app.state.shutdown_hooks:
            with contextlib.suppress(Exception):
                await hook(app)
        await db.dispose()
        log.info("stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()
    settings.fill_dev_secrets()
    configure_logging(settings.log_level, settings.effective_log_format.value)
    _init_sentry(settings)
    security.HASHING.configure(
        workers=settings.password_hash_workers, max_waiting=settings.password_hash_queue
    )

    # FastAPIOffline is FastAPI with /docs and /redoc served from assets in the
    # fastapi-offline package (under /static-offline-docs) instead of a CDN.
    app = FastAPIOffline(
        redoc_url=None,  # served by install_openapi, see core/openapi.py
        title="Banking API",
        version=__version__,
        description=API_PRIMER,
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.clock = utcnow
    # Per-user rate limits authenticate the caller with identity's provider (core/ratelimit.py).
    app.state.principal_provider = authenticate
    app.state.startup_hooks = [
        ratelimit.install,
        audit_sealer.start,
        idempotency_purge.start,
        replica.start,
        hold_sweeper.start,
    ]
    # The periodic jobs started above stop first, together (core/jobs.py `stop_all`, in
    # `lifespan`): no job has a shutdown hook of its own.
    app.state.shutdown_hooks = [
        replica.stop,
        ratelimit.close,
        reads.stop,
    ]
    install_error_handlers(app)
    install_openapi(app)

    from banking.routers import include_routers

    include_routers(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = render_latest()
        return Response(body, media_type=content_type)

    if WEB_DIR.joinpath("index.html").exists():
        app.mount("/", WebFiles(app, directory=WEB_DIR, html=True), name="web")
    routecache.install(app)
    fastparams.install()

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Idempotent-Replayed", "Retry-After"],
            max_age=600,
        )
    if settings.database_read_url:
        # Inside RequestMiddleware: a member's write is recorded before its response starts.
        app.add_middleware(replica.ReadYourWritesMiddleware)
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        trusted_proxies=settings.trusted_proxies,
    )
    return app
