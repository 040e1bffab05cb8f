"""FastAPI dependencies shared by every domain's routes."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from banking.core.config import Settings
from banking.core.db import Database, utcnow

# The bearer scheme every authenticated route declares (OpenAPI's `HTTPBearer`). It lives
# in core so the rate limiter can declare it too without importing identity; identity/deps.py
# turns its credentials into a principal.
bearer_scheme = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login.")


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hand-off per request on the hot path.
async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(
    db: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    # Closing the session rolls back anything a service did not commit.
    async with db.sessionmaker() as session:
        yield session


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is calling from where, for audit rows and session records."""

    ip: str | None
    user_agent: str | None
    request_id: str | None


def client_info_of(request: Request) -> ClientInfo:
    """`ClientInfo` straight from the request: for a hot route that keeps its dependencies
    to a minimum (each one FastAPI solves costs CPU on every request)."""
    ip = request.client.host if request.client else None
    request.state.client_ip = ip
    user_agent = request.headers.get("user-agent")
    return ClientInfo(
        ip=ip,
        user_agent=user_agent[:256] if user_agent else None,
        request_id=getattr(request.state, "request_id", None),
    )


async def get_client_info(request: Request) -> ClientInfo:
    return client_info_of(request)


def now_of(request: Request) -> dt.datetime:
    """The current time from `app.state.clock` (tests move it instead of sleeping)."""
    clock: Callable[[], dt.datetime] = getattr(request.app.state, "clock", utcnow)
    return clock()


async def get_now(request: Request) -> dt.datetime:
    return now_of(request)


DbSession = Annotated[AsyncSession, Depends(get_session)]
Db = Annotated[Database, Depends(get_database)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
Client = Annotated[ClientInfo, Depends(get_client_info)]
Now = Annotated[dt.datetime, Depends(get_now)]
