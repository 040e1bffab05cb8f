"""Liveness and readiness.

Liveness says the process answers. Readiness reads real tables: the Alembic revision in
the database must be the code's head or a later one whose migrations declare this release
compatible (expand/contract, core/schema_compat.py; a replaced, empty, older or
incompatible database fails), and Redis must answer when configured. The database check
opens a connection of its own (PostgreSQL), so readiness is 503 while no primary is
reachable and ok again as soon as one is (tests/ha/test_restart.py). While the process
drains after SIGTERM, readiness is 503 so load balancers stop sending traffic.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse

from banking.core.db import Database
from banking.core.errors import PROBLEM_JSON
from banking.core.logging import current_request_id, get_logger
from banking.core.schema_compat import revision_problem

router = APIRouter(prefix="/v1/health", tags=["health"])
log = get_logger("banking.health")
CHECK_TIMEOUT_S = 2.0


async def check_database(db: Database, expected_revision: str | None) -> str | None:
    """None when healthy, else the reason."""
    # Its own connection (see `Database.probe_engine`), not one from the request pool.
    async with db.probe_engine().connect() as connection:
        problem = await revision_problem(connection, expected_revision)
        await connection.execute(text('SELECT 1 FROM "user" LIMIT 1'))
    return problem


async def check_redis(redis_url: str) -> str | None:
    import redis.asyncio as redis

    client = redis.from_url(redis_url, socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return None


async def _run(name: str, check: Any) -> tuple[str, str | None]:
    started = time.perf_counter()
    try:
        reason = await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except TimeoutError:
        reason = f"timed out after {CHECK_TIMEOUT_S:.0f}s"
    except Exception as exc:
        # The class name tells an operator enough; the message may hold a DSN.
        reason = f"{type(exc).__name__}"
    if reason:
        log.warning(
            "readiness_check_failed",
            check=name,
            reason=reason,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
    return name, reason


@router.get("/live", summary="Liveness: the process is running")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: database at a compatible migration, Redis when configured",
    responses={503: {"description": "A check failed or the process is shutting down."}},
)
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    if getattr(state, "draining", False):
        return _not_ready({"shutdown": "the process is shutting down"})
    checks = [_run("database", check_database(state.db, state.migration_head))]
    if state.settings.redis_url:
        checks.append(_run("redis", check_redis(state.settings.redis_url)))
    results = dict(await asyncio.gather(*checks))
    failing = {name: reason for name, reason in results.items() if reason}
    if failing:
        return _not_ready(failing)
    report = {name: "ok" for name in results}
    if getattr(state, "replica", None) is not None:
        # Reported, never failing: while the replica is behind or away the primary reads.
        report["replica"] = await _replica_state(state.replica)
    return JSONResponse({"status": "ok", "checks": report})


async def _replica_state(replica: Any) -> str:
    try:
        state: str = await asyncio.wait_for(replica.readiness(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"timed out after {CHECK_TIMEOUT_S:.0f}s; reads use the primary"
    return state


def _not_ready(failing: dict[str, str]) -> JSONResponse:
    names = ", ".join(sorted(failing))
    return JSONResponse(
        {
            "type": "urn:banking:problem:not_ready",
            "title": "The service is not ready.",
            "status": 503,
            "detail": f"Failing checks: {names}.",
            "code": "not_ready",
            "request_id": current_request_id(),
            "checks": failing,
        },
        status_code=503,
        media_type=PROBLEM_JSON,
    )
