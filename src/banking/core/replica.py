"""An optional PostgreSQL read replica (`DATABASE_READ_URL`) for statements and history.

Heavy reads (monthly statements in every format, the transaction history) run on a
streaming standby when one is configured, so they take no CPU from the primary that moves
the money. A standby replays the primary's WAL a little later, so three rules keep its
answers right:

- Read-your-writes. When a member's write request (POST, PUT, PATCH, DELETE after
  authentication) is answered, the primary's current WAL position (LSN) is recorded for
  that member before the response leaves (`ReadYourWritesMiddleware`): in this process
  and, when `REDIS_URL` is set, in Redis, so every process knows it. For
  `READ_YOUR_WRITES_S` after that, the member's reads run on the replica only once it has
  replayed past that position; otherwise on the primary. A member therefore never reads
  a state older than their own acknowledged write (tests/ha/test_read_replica.py). With
  `READ_YOUR_WRITES_S=0` nothing is recorded (each read may lag by the replica's lag).
- Lag. A task measures the replica's replay lag every `MONITOR_INTERVAL_S`
  (`banking_replica_lag_seconds`); while it is above `READ_REPLICA_MAX_LAG_S`, or the
  replica cannot be reached, every read runs on the primary. Readiness reports the
  replica's state but stays ready: the primary serves the reads meanwhile.
- Where each read ran is counted in `banking_replica_reads_total{target, reason}`.

Members' reads right after a window ends may lag by up to `READ_REPLICA_MAX_LAG_S` plus
one measurement interval, so keep `READ_YOUR_WRITES_S` well above that sum.

The route side is one word: a read on the shared read path (identity/deps.py `Read`)
that may run on the replica passes `replica=True` (`read.json(fn, replica=True)`). The
session check of such a read runs on the primary (a session just created by a login, or
just revoked, is known there at once), then the route's statements on the replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import greenlet_spawn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from banking.core import reads
from banking.core.config import Settings
from banking.core.db import Database, discard_dead_on_checkout, on_connection
from banking.core.errors import DATABASE_RETRY_AFTER_S, DatabaseUnavailable
from banking.core.logging import get_logger

log = get_logger("banking.core.replica")
T = TypeVar("T")

MONITOR_INTERVAL_S = 1.0
READ_POOL_MAX = 8
# Marks kept in this process before expired ones are swept.
SWEEP_AT = 10_000
# An LSN no replica reaches: a write whose position could not be read sends the member's
# reads to the primary for the whole window.
UNKNOWN_LSN = (1 << 64) - 1
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

REPLICA_LAG = Gauge(
    "banking_replica_lag_seconds",
    "How far the read replica's replay is behind (seconds since the last replayed "
    "transaction while WAL is waiting to be replayed; 0 when caught up).",
    multiprocess_mode="livemax",
)
REPLICA_READS = Counter(
    "banking_replica_reads_total",
    "Reads that may use the replica, by where they ran and why.",
    ["target", "reason"],
)

# On the replica: its replay position and lag (0 when everything received is replayed).
# A server that is not in recovery (a promoted standby, or a primary named by mistake)
# reports its current position and no lag.
_REPLICA_STATE = text(
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
    " ELSE pg_current_wal_lsn()::text END,"
    " CASE WHEN NOT pg_is_in_recovery() THEN 0"
    " WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0"
    " ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)
_REPLAYED = text(
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
    " ELSE pg_current_wal_lsn()::text END"
)
# Redis: keep the highest position of a member's writes (16 hex digits compare as text).
_MARK_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if (not current) or current < ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def parse_lsn(value: str | None) -> int:
    """`16/B374D848` as a number; 0 for none."""
    if not value:
        return 0
    high, _slash, low = value.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _primary_lsn(connection: Connection) -> int:
    return parse_lsn(connection.exec_driver_sql("SELECT pg_current_wal_lsn()::text").scalar())


class Replica:
    """The replica's engine, what this process knows of its state, and the members' marks."""

    def __init__(self, db: Database, settings: Settings) -> None:
        url = settings.database_read_url
        if not url or not url.startswith("postgresql"):
            raise RuntimeError("DATABASE_READ_URL must be a PostgreSQL URL")
        if db.is_sqlite:
            raise RuntimeError("DATABASE_READ_URL needs a PostgreSQL DATABASE_URL")
        self.db = db
        self.max_lag_s = settings.read_replica_max_lag_s
        self.window_s = settings.read_your_writes_s
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=max(2, min(settings.db_pool_size, READ_POOL_MAX)),
            max_overflow=0,
            pool_recycle=1800,
            hide_parameters=True,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": settings.db_connect_timeout_s},
        )
        discard_dead_on_checkout(self.engine.sync_engine)
        # Readiness checks on a connection of their own, like the primary's.
        self.probe: AsyncEngine = create_async_engine(
            url,
            poolclass=NullPool,
            hide_parameters=True,
            connect_args={"timeout": settings.db_connect_timeout_s},
        )
        self.replayed_lsn = 0
        self.lag_s: float | None = None  # None: not measured yet, or unreachable
        self._marks: dict[str, tuple[int, float]] = {}
        self._redis: Any = None
        self._redis_prefix = f"{settings.rate_limit_key_prefix}:ryw:"
        if settings.redis_url and self.window_s > 0:
            import redis.asyncio as redis

            self._redis = redis.from_url(settings.redis_url)
        self._monitor: asyncio.Task[None] | None = None

    # -- the replica's state

    async def measure(self, engine: AsyncEngine | None = None) -> float:
        """Read the replica's position and lag (on `engine`, by default its pool)."""
        async with (engine or self.engine).connect() as connection:
            row = (await connection.execute(_REPLICA_STATE)).one()
        self._saw_replayed(parse_lsn(row[0]))
        self.lag_s = float(row[1])
        REPLICA_LAG.set(self.lag_s)
        return self.lag_s

    def _saw_replayed(self, lsn: int) -> None:
        self.replayed_lsn = max(self.replayed_lsn, lsn)

    @property
    def usable(self) -> bool:
        return self.lag_s is not None and self.lag_s <= self.max_lag_s

    async def _watch(self) -> None:
        failing = False
        while True:
            try:
                await self.measure()
                if failing:
                    log.info("replica_reachable", lag_s=round(self.lag_s or 0, 3))
                failing = False
            except Exception as exc:
                self.lag_s = None
                if not failing:
                    log.warning("replica_unreachable", error=type(exc).__name__)
                failing = True
            await asyncio.sleep(MONITOR_INTERVAL_S)

    async def readiness(self) -> str:
        """The replica's state for readiness (never a failure: the primary serves reads)."""
        try:
            lag_s = await self.measure(self.probe)
        except Exception as exc:
            return f"unreachable ({type(exc).__name__}); reads use the primary"
        if lag_s > self.max_lag_s:
            return (
                f"behind by {lag_s:.1f} s (READ_REPLICA_MAX_LAG_S {self.max_lag_s:g}); "
                "reads use the primary"
            )
        return "ok"

    # -- members' writes

    async def mark_write(self, user_id: str) -> None:
        """Record that `user_id` just wrote: the primary's position now covers it."""
        if self.window_s <= 0:
            return
        try:
            lsn = await reads.run(self.db, _primary_lsn)
        except Exception:
            lsn = UNKNOWN_LSN
        expires_at = time.monotonic() + self.window_s
        previous = self._marks.get(user_id)
        if previous is not None and previous[0] > lsn and previous[1] > time.monotonic():
            lsn = previous[0]
        self._marks[user_id] = (lsn, expires_at)
        if len(self._marks) > SWEEP_AT:
            now = time.monotonic()
            self._marks = {user: mark for user, mark in self._marks.items() if mark[1] > now}
        if self._redis is not None:
            try:
                await self._redis.eval(
                    _MARK_SCRIPT,
                    1,
                    self._redis_prefix + user_id,
                    f"{lsn:016X}",
                    int(self.window_s * 1000),
                )
            except Exception as exc:
                # Other processes cannot learn of this write: read the primary everywhere
                # until Redis answers again (see `_mark_of`).
                log.warning("read_your_writes_mark_failed", error=type(exc).__name__)

    async def _mark_of(self, user_id: str) -> int:
        """The highest position of `user_id`'s writes within the window, 0 for none."""
        lsn = 0
        mark = self._marks.get(user_id)
        if mark is not None:
            if mark[1] > time.monotonic():
                lsn = mark[0]
            else:
                self._marks.pop(user_id, None)
        if self._redis is not None:
            try:
                shared = await self._redis.get(self._redis_prefix + user_id)
            except Exception:
                return UNKNOWN_LSN
            if shared:
                lsn = max(lsn, int(shared, 16))
        return lsn

    # -- reads

    async def route(self, user_id: str | None) -> tuple[str, str]:
        """Where `user_id`'s read runs: ("replica" | "primary", reason)."""
        if user_id is None:
            return "primary", "anonymous"
        if not self.usable:
            return "primary", "replica_unreachable" if self.lag_s is None else "replica_behind"
        if self.window_s > 0:
            needed = await self._mark_of(user_id)
            if needed > self.replayed_lsn:
                try:
                    async with self.engine.connect() as connection:
                        self._saw_replayed(parse_lsn(await connection.scalar(_REPLAYED)))
                except Exception:
                    return "primary", "replica_unreachable"
                if needed > self.replayed_lsn:
                    return "primary", "own_write"
        return "replica", "replica"

    async def run(self, user_id: str | None, fn: Callable[[Connection], T]) -> T:
        """The read `fn(connection)` on the replica when it may serve `user_id`'s read,
        else on the primary's read path (core/reads.py). A read the standby cancels so
        that replay can go on is a retryable 503, not a fault."""
        target, reason = await self.route(user_id)
        REPLICA_READS.labels(target=target, reason=reason).inc()
        if target != "replica":
            return await reads.run(self.db, fn)
        try:
            result: T = await greenlet_spawn(on_connection, self.engine.sync_engine, fn)
        except DBAPIError as exc:
            if is_recovery_conflict(exc):
                raise DatabaseUnavailable(
                    "The read replica cancelled the read; retry.",
                    headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
                ) from exc
            raise
        return result

    async def start(self) -> None:
        self._monitor = asyncio.create_task(self._watch(), name="replica-monitor")

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        await self.engine.dispose()
        await self.probe.dispose()


class ReadYourWritesMiddleware:
    """Records a member's write before its response starts (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                user_id = scope.get("state", {}).get("user_id")
                replica: Replica | None = getattr(scope["app"].state, "replica", None)
                if user_id and replica is not None:
                    await replica.mark_write(str(user_id))
            await send(message)

        await self.app(scope, receive, send_marked)


def is_recovery_conflict(error: DBAPIError) -> bool:
    """A standby cancelled the statement so that WAL replay could go on."""
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return sqlstate in ("40001", "40P01") and "conflict with recovery" in str(original)


async def start(app: FastAPI) -> None:
    """Startup hook: the replica, when `DATABASE_READ_URL` is set."""
    settings: Settings = app.state.settings
    app.state.replica = None
    if not settings.database_read_url:
        return
    replica = Replica(app.state.db, settings)
    if settings.read_your_writes_s > 0 and not settings.redis_url:
        log.warning(
            "read_your_writes_in_process_only",
            detail="without REDIS_URL a member's writes are known only to the process that "
            "served them; set REDIS_URL when several processes or workers serve",
        )
    with contextlib.suppress(Exception):
        await replica.measure()  # known before the first read; the monitor retries
    await replica.start()
    app.state.replica = replica
    log.info("replica_configured", lag_s=replica.lag_s)


async def stop(app: FastAPI) -> None:
    replica: Replica | None = getattr(app.state, "replica", None)
    if replica is not None:
        app.state.replica = None
        await replica.close()
