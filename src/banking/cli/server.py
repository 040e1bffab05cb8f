"""`banking version | migrate | serve`: the server and its database schema.

The root (banking/cli/__init__.py) registers these functions as top-level commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from typing import Annotated

import typer

from banking import __version__
from banking.cli.common import console, err, load_settings
from banking.core.config import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def version() -> None:
    """Print the version."""
    console.print(__version__)


def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations (an explicit step in production).

    For SQLite, the database file (and its folder) is created here, never by the server.
    """
    from banking.core.migrate import rollout_notes, sqlite_path, upgrade

    settings = load_settings()
    path = sqlite_path(settings.database_url)
    if path is not None and not path.parent.is_dir():
        path.parent.mkdir(parents=True)
        console.print(f"created the folder {path.parent}")
    applied = upgrade(settings.database_url, revision, audit_key=settings.audit_key)
    for note in rollout_notes(applied):
        console.print(note)
    console.print(f"database migrated to {revision}")


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Serve the API and the web UI with uvicorn.

    With several workers and no PROMETHEUS_MULTIPROC_DIR set, a temporary directory is
    created for prometheus-client's multiprocess mode (so /metrics adds up every worker)
    and removed on exit.
    """
    from banking.core.logging import configure_logging

    settings = load_settings()
    from banking.core.migrate import migration_problem, refusal

    problem = asyncio.run(migration_problem(settings.database_url))
    if problem is not None:
        err.print(refusal(problem))
        raise typer.Exit(2)
    if settings.is_sqlite and workers > 1:
        err.print(
            "[bold red]SQLite runs in one process[/]: its writer lock is in-process. "
            "Use PostgreSQL (DATABASE_URL) for several workers."
        )
        raise typer.Exit(2)
    # The supervisor logs too (worker start, restart, shutdown): same format as the workers.
    configure_logging(settings.log_level, settings.effective_log_format.value)
    with metrics_directory(workers=1 if reload else workers):
        _run_uvicorn(settings, host=host, port=port, workers=workers, reload=reload)


@contextlib.contextmanager
def metrics_directory(*, workers: int) -> Iterator[str | None]:
    """Set PROMETHEUS_MULTIPROC_DIR to a fresh directory for the server's lifetime.

    Needed only with several workers; an operator's own setting is kept as it is. Workers
    are spawned after this runs, so they inherit the variable before importing
    prometheus-client (which reads it once, at import).
    """
    configured = os.environ.get(MULTIPROC_ENV, "").strip()
    if workers <= 1 or configured:
        yield configured or None
        return
    directory = tempfile.mkdtemp(prefix="banking-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def _stopped_on_request(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _run_uvicorn(settings: Settings, *, host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    # handler that was there before it: this one, so a requested stop ends with status 0
    # (`make run` and process supervisors see a clean exit, not "Terminated").
    signal.signal(signal.SIGTERM, _stopped_on_request)
    uvicorn.run(
        "banking.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        server_header=False,
        date_header=True,
        # The application reads X-Forwarded-For itself (core/clientaddr.py).
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        timeout_keep_alive=settings.http_keep_alive_s,
        log_config=None,
        access_log=False,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
    )
