"""Routes that exist only when APP_ENV=test: they let tests hold a request open."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query

from banking.core.logging import get_logger

log = get_logger("banking.core.diagnostics")
router = APIRouter(prefix="/v1/test", tags=["test"], include_in_schema=False)


@router.get("/slow")
async def slow(ms: int = Query(default=1000, ge=0, le=30_000)) -> dict[str, int]:
    """Answer after `ms` milliseconds (graceful-shutdown tests). Logs `slow_request_started`
    first, so a test knows the request is in flight without guessing with a sleep."""
    log.info("slow_request_started", ms=ms)
    await asyncio.sleep(ms / 1000)
    return {"slept_ms": ms}


@router.get("/crash")
async def crash() -> None:
    """Raise an unexpected error (the 500 path must not leak details)."""
    raise RuntimeError("SELECT password_hash FROM user -- internal detail that must not leak")
