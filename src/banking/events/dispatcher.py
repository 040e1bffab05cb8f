"""The dispatcher: numbers new events, fans them out to webhook endpoints, delivers.

One tick (`tick`) does three steps, each idempotent:

1. publish: events without a `position` get the next positions, in id order, and one
   pending delivery per enabled endpoint that subscribes to their type and may see them
   (its owner's events; a staff owner's endpoint sees every event). One transaction on
   the ledger's writer, so on SQLite it shares a group commit with money movements.
2. deliver: per endpoint, its pending deliveries in position order (in order per
   endpoint): each is POSTed, signed, outside any transaction; the first failure stops
   that endpoint until its retry time, so later events never overtake an earlier one.
3. record: the attempts and the deliveries' new states, one transaction per endpoint.

At-least-once: a delivery is marked delivered only after the receiver answered 2xx; a
crash after the answer and before the record sends it again (receivers de-duplicate by
the `Banking-Event-Id` header). Nothing is lost: events and pending deliveries are rows.
A delivery failing for `WEBHOOK_GIVE_UP_AFTER_S` (3 days) is marked failed, its endpoint
disabled and its owner told by a `webhook_endpoint.disabled` event.

Who runs it: every API process starts `run` (unless `EVENTS_DISPATCH_INTERVAL_S=0`); on
PostgreSQL the process holding a session advisory lock leads, the others wait to take
over; on SQLite the single process runs it. `banking webhooks run` runs the same loop
as a separate worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection

from banking import __version__
from banking.core import jobs, reads
from banking.core.config import Settings
from banking.core.db import Database, utcnow
from banking.core.logging import get_logger
from banking.events import outbox, signing, urls
from banking.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from banking.identity.models import Role, User
from banking.ledger.writer import writer_for

log = get_logger("banking.events.dispatcher")
EVENT = cast(Table, Event.__table__)
ENDPOINT = cast(Table, WebhookEndpoint.__table__)
DELIVERY = cast(Table, WebhookDelivery.__table__)
ATTEMPT = cast(Table, WebhookAttempt.__table__)
USER = cast(Table, User.__table__)

PUBLISH_BATCH = 500
DELIVER_BATCH = 100
MAX_RETRY_DELAY_S = 6 * 3600
EXCERPT_CHARS = 500
# Any constant shared by all processes: the advisory locks of the leader and publisher.
_LEADER_LOCK_KEY = 0x77656268
_PUBLISH_LOCK_KEY = 0x65767473
STAFF_ROLES = (Role.support.value, Role.admin.value)


def subscribed(event_types: Sequence[str], event_type: str) -> bool:
    for pattern in event_types:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


# -- 1. publish


def _number_statement(batch: int) -> Any:
    """Number up to `batch` new events in id order after the highest position, in one
    statement (UPDATE ... FROM, on both databases), answering the numbered rows."""
    latest = EVENT.alias("latest")
    top = select(func.coalesce(func.max(latest.c.position), 0)).scalar_subquery()
    numbered = (
        select(
            EVENT.c.id.label("event_id"),
            (top + func.row_number().over(order_by=EVENT.c.id)).label("new_position"),
        )
        .where(EVENT.c.position.is_(None))
        .order_by(EVENT.c.id)
        .limit(batch)
        .subquery("numbered")
    )
    return (
        update(EVENT)
        .where(EVENT.c.id == numbered.c.event_id)
        .values(position=numbered.c.new_position, published_at=bindparam("now"))
        .returning(EVENT.c.id, EVENT.c.type, EVENT.c.owner_id, EVENT.c.created_at, EVENT.c.position)
    )


_NUMBER = _number_statement(PUBLISH_BATCH)


def publish_sync(connection: Connection, *, now: dt.datetime, batch: int = PUBLISH_BATCH) -> int:
    """Number up to `batch` new events and create their deliveries. Returns how many."""
    if connection.dialect.name == "postgresql":
        # One publisher at a time (the leader normally; this holds during a hand-over).
        locked = connection.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _PUBLISH_LOCK_KEY}
        ).scalar()
        if not locked:
            return 0
    statement = _NUMBER if batch == PUBLISH_BATCH else _number_statement(batch)
    rows = sorted(connection.execute(statement, {"now": now}).all(), key=lambda row: row.position)
    if not rows:
        return 0
    endpoints = connection.execute(
        select(
            ENDPOINT.c.id,
            ENDPOINT.c.owner_id,
            ENDPOINT.c.event_types,
            ENDPOINT.c.created_at,
            USER.c.role,
        )
        .join(USER, USER.c.id == ENDPOINT.c.owner_id)
        .where(ENDPOINT.c.status == "enabled")
    ).all()
    deliveries = []
    for endpoint in endpoints:
        types = json.loads(endpoint.event_types)
        sees_all = endpoint.role in STAFF_ROLES
        for row in rows:
            position = row.position
            # An endpoint receives the events created after it.
            if row.created_at < endpoint.created_at or not subscribed(types, row.type):
                continue
            if not sees_all and row.owner_id != endpoint.owner_id:
                continue
            deliveries.append(
                {
                    "id": uuid.uuid4(),
                    "endpoint_id": endpoint.id,
                    "event_id": row.id,
                    "position": position,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if deliveries:
        connection.execute(insert(DELIVERY), deliveries)
    return len(rows)


# The two questions every tick asks, idle or not (every EVENTS_DISPATCH_INTERVAL_S, 0.25 s
# by default, in every process), asked on the read path (core/reads.py): each statement
# compiled once, and on SQLite answered inline instead of through the async engine's
# thread: an idle tick takes no connection of the async engine
# (tests/integration/test_idle_ticks.py).
_UNPUBLISHED = select(EVENT.c.id).where(EVENT.c.position.is_(None)).limit(1)
_DUE_ENDPOINTS = (
    select(DELIVERY.c.endpoint_id)
    .join(ENDPOINT, ENDPOINT.c.id == DELIVERY.c.endpoint_id)
    .where(
        DELIVERY.c.status == "pending",
        DELIVERY.c.next_attempt_at <= bindparam("now", type_=DELIVERY.c.next_attempt_at.type),
        ENDPOINT.c.status == "enabled",
    )
    .distinct()
    .limit(DELIVER_BATCH)
)


def _has_unpublished_sync(connection: Connection) -> bool:
    return reads.first(connection, _UNPUBLISHED) is not None


def _due_endpoints_sync(connection: Connection, now: dt.datetime) -> list[uuid.UUID]:
    return [row.endpoint_id for row in reads.rows(connection, _DUE_ENDPOINTS, {"now": now})]


async def publish(db: Database, *, now: dt.datetime | None = None, rounds: int = 20) -> int:
    """Number the new events, a batch at a time (at most `rounds` batches, so that a
    steady stream of events leaves time to deliver); returns how many."""
    total = 0
    for _round in range(rounds):
        if not await reads.run(db, _has_unpublished_sync):
            break
        stamp = now or utcnow()
        done = await writer_for(db).run(
            functools.partial(publish_sync, now=stamp)  # the connection comes first
        )
        total += done
        if done == 0:
            # Another process is publishing (a leader hand-over): give it a moment.
            await asyncio.sleep(0.02)
        elif done < PUBLISH_BATCH:
            break
    return total


# -- 2. deliver


@dataclass(frozen=True, slots=True)
class _Due:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    attempts: int
    next_attempt_at: dt.datetime
    created_at: dt.datetime
    event_id: uuid.UUID
    event_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Result:
    due: _Due
    attempted_at: dt.datetime
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def event_body(row: Any) -> bytes:
    """The JSON body of a delivery: the event as `GET /v1/events/{id}` shows it."""
    head = json.dumps(
        {
            "id": str(row.id),
            "type": row.type,
            "created_at": outbox._default(row.created_at),
            "owner_id": str(row.owner_id) if row.owner_id else None,
            "account_id": str(row.account_id) if row.account_id else None,
            "subject": {"type": row.subject_type, "id": row.subject_id},
        },
        separators=(",", ":"),
    )
    data: str = row.data
    return (head[:-1] + ',"data":' + data + "}").encode()


async def _due_deliveries(db: Database, now: dt.datetime) -> dict[uuid.UUID, list[_Due]]:
    """Per endpoint with something due, its oldest pending deliveries (at most
    DELIVER_BATCH), when the oldest is due: in order per endpoint, an endpoint whose oldest
    pending delivery waits for its retry time sends nothing newer meanwhile."""
    columns = (
        DELIVERY.c.id.label("delivery_id"),
        DELIVERY.c.endpoint_id,
        DELIVERY.c.attempts,
        DELIVERY.c.next_attempt_at,
        DELIVERY.c.created_at.label("delivery_created_at"),
        EVENT.c.id,
        EVENT.c.type,
        EVENT.c.created_at,
        EVENT.c.owner_id,
        EVENT.c.account_id,
        EVENT.c.subject_type,
        EVENT.c.subject_id,
        EVENT.c.data,
    )
    per_endpoint: dict[uuid.UUID, list[_Due]] = {}
    endpoint_ids = await reads.run(db, functools.partial(_due_endpoints_sync, now=now))
    if not endpoint_ids:
        return per_endpoint
    async with db.sessionmaker() as session:
        for endpoint_id in endpoint_ids:
            rows = (
                await session.execute(
                    select(*columns)
                    .join(EVENT, EVENT.c.id == DELIVERY.c.event_id)
                    .where(DELIVERY.c.endpoint_id == endpoint_id, DELIVERY.c.status == "pending")
                    .order_by(DELIVERY.c.position)
                    .limit(DELIVER_BATCH)
                )
            ).all()
            if rows and rows[0].next_attempt_at <= now:
                per_endpoint[endpoint_id] = [
                    _Due(
                        delivery_id=row.delivery_id,
                        endpoint_id=row.endpoint_id,
                        attempts=row.attempts,
                        next_attempt_at=row.next_attempt_at,
                        created_at=row.delivery_created_at,
                        event_id=row.id,
                        event_type=row.type,
                        body=event_body(row),
                    )
                    for row in rows
                ]
    return per_endpoint


async def _endpoint_secrets(
    db: Database, endpoint_id: uuid.UUID, now: dt.datetime
) -> tuple[str, list[str]] | None:
    async with db.sessionmaker() as session:
        endpoint = (
            await session.execute(select(ENDPOINT).where(ENDPOINT.c.id == endpoint_id))
        ).first()
    if endpoint is None or endpoint.status != "enabled":
        return None
    settings = db.settings
    secrets = [
        signing.unseal(
            settings, endpoint.secret_key_id, endpoint.secret_sealed, endpoint_id=str(endpoint.id)
        )
    ]
    if (
        endpoint.previous_secret_sealed is not None
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(
            signing.unseal(
                settings,
                endpoint.previous_secret_key_id or "",
                endpoint.previous_secret_sealed,
                endpoint_id=str(endpoint.id),
            )
        )
    return endpoint.url, secrets


async def _send(
    http: httpx.AsyncClient, target: urls.Target, due: _Due, secrets: list[str]
) -> _Result:
    attempted_at = utcnow()
    timestamp = int(time.time())
    headers = {
        "Host": target.host,
        "Content-Type": "application/json",
        "User-Agent": f"Banking-Webhooks/{__version__}",
        signing.SIGNATURE_HEADER: signing.signature_header(secrets, timestamp, due.body),
        signing.EVENT_ID_HEADER: str(due.event_id),
        signing.EVENT_TYPE_HEADER: due.event_type,
        signing.DELIVERY_ID_HEADER: str(due.delivery_id),
    }
    started = time.perf_counter()
    try:
        response = await http.post(
            target.url,
            content=due.body,
            headers=headers,
            extensions={"sni_hostname": target.host.rsplit(":", 1)[0]},
        )
    except httpx.HTTPError as exc:
        latency_ms = int((time.perf_counter() - started) * 1000)
        return _Result(due, attempted_at, None, latency_ms, None, type(exc).__name__[:200])
    latency_ms = int((time.perf_counter() - started) * 1000)
    excerpt = response.text[:EXCERPT_CHARS] if response.content else None
    return _Result(due, attempted_at, response.status_code, latency_ms, excerpt, None)


def retry_delay_s(settings: Settings, attempts: int) -> float:
    """Exponential backoff with jitter: base x 2^(attempts-1), capped, times 0.5-1.0."""
    delay = min(settings.webhook_retry_base_s * 2.0 ** min(attempts - 1, 30), MAX_RETRY_DELAY_S)
    return float(delay * (0.5 + random.random() / 2))


def _record_sync(
    connection: Connection, results: list[_Result], *, settings: Settings, now: dt.datetime
) -> None:
    if not results:
        return
    connection.execute(
        insert(ATTEMPT),
        [
            {
                "delivery_id": result.due.delivery_id,
                "attempted_at": result.attempted_at,
                "succeeded": result.succeeded,
                "status_code": result.status_code,
                "latency_ms": result.latency_ms,
                "response_excerpt": result.excerpt,
                "error": result.error,
            }
            for result in results
        ],
    )
    for result in results:
        due = result.due
        attempts = due.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": result.attempted_at,
            "last_status_code": result.status_code,
        }
        if result.succeeded:
            values.update(status="succeeded", delivered_at=result.attempted_at)
        elif (now - due.created_at).total_seconds() >= settings.webhook_give_up_after_s:
            values["status"] = "failed"
            _disable_sync(connection, due.endpoint_id, now=now, reason="failing")
        else:
            values["next_attempt_at"] = now + dt.timedelta(
                seconds=retry_delay_s(settings, attempts)
            )
        # Only a pending delivery changes: a concurrent retry request or a deletion wins.
        connection.execute(
            update(DELIVERY)
            .where(DELIVERY.c.id == due.delivery_id, DELIVERY.c.status == "pending")
            .values(values)
        )


def _disable_sync(
    connection: Connection, endpoint_id: uuid.UUID, *, now: dt.datetime, reason: str
) -> None:
    endpoint = connection.execute(
        update(ENDPOINT)
        .where(ENDPOINT.c.id == endpoint_id, ENDPOINT.c.status == "enabled")
        .values(status="disabled", disabled_reason=reason, updated_at=now)
        .returning(ENDPOINT.c.id, ENDPOINT.c.owner_id, ENDPOINT.c.url)
    ).first()
    if endpoint is None:
        return
    outbox.emit_sync(
        connection,
        type="webhook_endpoint.disabled",
        owner_id=endpoint.owner_id,
        subject_type="webhook_endpoint",
        subject_id=endpoint.id,
        data={"id": endpoint.id, "url": endpoint.url, "status": "disabled", "reason": reason},
        created_at=now,
    )


async def _deliver_endpoint(
    db: Database, http: httpx.AsyncClient, endpoint_id: uuid.UUID, queue: list[_Due]
) -> int:
    settings = db.settings
    now = utcnow()
    found = await _endpoint_secrets(db, endpoint_id, now)
    if found is None:
        return 0
    url, secrets = found
    results: list[_Result] = []
    try:
        # Checked again before each batch: the host's addresses may have changed since
        # the endpoint was registered.
        target = await urls.resolve(url, allow_private=settings.webhook_allow_private)
    except urls.UnsafeWebhookUrl as exc:
        results.append(_Result(queue[0], now, None, 0, None, f"url_refused: {exc.detail}"[:200]))
    else:
        for due in queue:
            if due.next_attempt_at > utcnow():
                break
            result = await _send(http, target, due, secrets)
            results.append(result)
            if not result.succeeded:
                break
    finished = utcnow()
    await writer_for(db).run(
        lambda connection: _record_sync(connection, results, settings=settings, now=finished)
    )
    return sum(result.succeeded for result in results)


async def deliver(db: Database, http: httpx.AsyncClient) -> int:
    """Send what is due, in order per endpoint; returns how many were delivered."""
    due = await _due_deliveries(db, utcnow())
    if not due:
        return 0
    delivered = await asyncio.gather(
        *(_deliver_endpoint(db, http, endpoint_id, queue) for endpoint_id, queue in due.items())
    )
    return sum(delivered)


def http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_s),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
    )


async def tick(db: Database, http: httpx.AsyncClient) -> tuple[int, int]:
    published = await publish(db)
    delivered = await deliver(db, http)
    return published, delivered


# -- the loop, and who runs it


async def _dispatch_once(db: Database) -> None:
    async with http_client(db.settings) as http:
        await tick(db, http)


@contextlib.asynccontextmanager
async def _dispatching(db: Database) -> AsyncIterator[jobs.Tick]:
    """One HTTP client for a whole run, so that connections to receivers are reused."""
    async with http_client(db.settings) as http:

        async def dispatch(db: Database) -> None:
            await tick(db, http)

        yield dispatch


JOB = jobs.PeriodicJob(
    name="events-dispatcher",
    tick=_dispatch_once,
    prepare=_dispatching,
    interval_s=lambda settings: settings.events_dispatch_interval_s,
    failure_event="events_dispatch_failed",
    logger=log,
    first_delay_s=0.0,
    # Those standing by try for the lock every 2 s at the most.
    leader=jobs.Leader(lock_key=_LEADER_LOCK_KEY, keep=True, standby_interval_s=2.0),
)
run = JOB.run
# The start-up hook (no task when EVENTS_DISPATCH_INTERVAL_S is 0). `stop` stops this job alone; at
# shutdown the lifespan stops every job at once (core/jobs.py `stop_all`).
start = JOB.start
stop = JOB.stop
