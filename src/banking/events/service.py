"""Events and webhook endpoints: reads of the outbox, and endpoint management.

Guarantees: a member reads only their own events and endpoints (anyone else's id is
404); staff read every event. Lists are in position order, the order in which events
became visible, so paging (or resuming the stream) after an event never skips one that
committed later. An endpoint's secret is returned once, at creation or rotation; it is
stored encrypted (events/signing.py).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit import service as audit
from banking.core import reads
from banking.core.config import Settings
from banking.core.db import utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import NotFound
from banking.core.pagination import PageRequest, cursor_int, cursor_uuid, keyset_after
from banking.events import signing, urls
from banking.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from banking.events.schemas import (
    RotateSecretIn,
    WebhookEndpointIn,
    WebhookEndpointPatch,
)
from banking.identity.service import Principal

EVENT = cast(Table, Event.__table__)
ENDPOINT = cast(Table, WebhookEndpoint.__table__)
DELIVERY = cast(Table, WebhookDelivery.__table__)
ATTEMPT = cast(Table, WebhookAttempt.__table__)
ATTEMPTS_SHOWN = 5


def event_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "created_at": row.created_at,
        "owner_id": row.owner_id,
        "account_id": row.account_id,
        "subject": {"type": row.subject_type, "id": row.subject_id},
        "data": json.loads(row.data),
    }


def _visible(principal: Principal) -> ColumnElement[bool]:
    return true() if principal.is_staff else EVENT.c.owner_id == principal.user_id


def _numbered(principal: Principal) -> Select[Any]:
    return select(EVENT).where(EVENT.c.position.is_not(None), _visible(principal))


def position_of_sync(
    connection: Connection, *, principal: Principal, event_id: uuid.UUID
) -> int | None:
    """The position of a visible, numbered event (None: unknown or not numbered yet)."""
    return cast(
        int | None,
        connection.execute(
            select(EVENT.c.position).where(EVENT.c.id == event_id, _visible(principal))
        ).scalar(),
    )


def list_events_sync(
    connection: Connection,
    *,
    principal: Principal,
    page: PageRequest,
    event_type: str | None = None,
    since: dt.datetime | None = None,
    after: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Visible, numbered events in position order, filtered; `after` (an event id) starts
    after that event when no cursor is given (404 if it is not visible)."""
    statement = _numbered(principal)
    if event_type is not None:
        if event_type.endswith(".*"):
            statement = statement.where(EVENT.c.type.startswith(event_type[:-1]))
        else:
            statement = statement.where(EVENT.c.type == event_type)
    if since is not None:
        statement = statement.where(EVENT.c.created_at >= since)
    if owner_id is not None:
        statement = statement.where(EVENT.c.owner_id == owner_id)
    if account_id is not None:
        statement = statement.where(EVENT.c.account_id == account_id)
    key = page.after(cursor_int)
    if key is None and after is not None:
        position = position_of_sync(connection, principal=principal, event_id=after)
        if position is None:
            raise NotFound("No such event.")
        key = (position,)
    rows = connection.execute(
        statement.where(keyset_after((EVENT.c.position,), key))
        .order_by(EVENT.c.position)
        .limit(page.limit + 1)
    ).all()
    items, next_cursor = page.slice(rows, key=lambda row: (row.position,))
    return [event_out(row) for row in items], next_cursor


_EVENT_OF_ANYONE = select(EVENT).where(EVENT.c.id == bindparam("event_id"))
_EVENT_OF_OWNER = select(EVENT).where(
    EVENT.c.id == bindparam("event_id"), EVENT.c.owner_id == bindparam("owner_id")
)


def get_event_sync(
    connection: Connection, *, principal: Principal, event_id: uuid.UUID
) -> dict[str, Any]:
    """A visible event (the caller's; staff: anyone's); 404 otherwise."""
    if principal.is_staff:
        row = reads.first(connection, _EVENT_OF_ANYONE, {"event_id": event_id})
    else:
        params = {"event_id": event_id, "owner_id": principal.user_id}
        row = reads.first(connection, _EVENT_OF_OWNER, params)
    if row is None:
        raise NotFound("No such event.")
    return event_out(row)


STREAM_BATCH = 100
_STREAM_NUMBERED = (EVENT.c.position.is_not(None), EVENT.c.position > bindparam("position"))
# The stream's poll, a fixed statement each (core/reads.py): staff see every event.
_EVENTS_AFTER_ANYONE = (
    select(EVENT).where(*_STREAM_NUMBERED).order_by(EVENT.c.position).limit(STREAM_BATCH)
)
_EVENTS_AFTER_OWNER = (
    select(EVENT)
    .where(*_STREAM_NUMBERED, EVENT.c.owner_id == bindparam("owner_id"))
    .order_by(EVENT.c.position)
    .limit(STREAM_BATCH)
)
_LATEST_POSITION = select(func.coalesce(func.max(EVENT.c.position), 0))


def events_after_sync(connection: Connection, *, principal: Principal, position: int) -> list[Any]:
    """Up to STREAM_BATCH numbered events visible to the caller after `position`, in
    position order (the stream's poll, on the read path)."""
    if principal.is_staff:
        return reads.rows(connection, _EVENTS_AFTER_ANYONE, {"position": position})
    return reads.rows(
        connection, _EVENTS_AFTER_OWNER, {"position": position, "owner_id": principal.user_id}
    )


def latest_position_sync(connection: Connection) -> int:
    row = reads.first(connection, _LATEST_POSITION)
    return int(row[0] or 0)


# -- webhook endpoints


def endpoint_out(endpoint: Any) -> dict[str, Any]:
    """An endpoint (the model, or a row with its names) as shown: never its secret."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": json.loads(endpoint.event_types),
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


async def _owned_endpoint(
    session: AsyncSession, *, principal: Principal, endpoint_id: uuid.UUID, lock: bool = False
) -> WebhookEndpoint:
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.owner_id == principal.user_id
    )
    if lock:
        statement = statement.with_for_update()
    endpoint = (await session.execute(statement)).scalar_one_or_none()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


async def create_endpoint(
    session: AsyncSession,
    *,
    principal: Principal,
    request: WebhookEndpointIn,
    settings: Settings,
    client: ClientInfo,
) -> dict[str, Any]:
    await urls.resolve(request.url, allow_private=settings.webhook_allow_private)
    secret = signing.new_secret()
    endpoint_id = uuid.uuid4()
    key_id, sealed = signing.seal(settings, secret, endpoint_id=str(endpoint_id))
    now = utcnow()
    async with write_transaction(session):
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            owner_id=principal.user_id,
            url=request.url,
            description=request.description,
            event_types=json.dumps(sorted(set(request.event_types))),
            status="enabled",
            secret_key_id=key_id,
            secret_sealed=sealed,
            created_at=now,
            updated_at=now,
        )
        session.add(endpoint)
        await session.flush()
        await audit.record(
            session,
            event_type="webhook_endpoint.created",
            actor_id=principal.user_id,
            target_type="webhook_endpoint",
            target_id=endpoint_id,
            client=client,
            details={"url": request.url},
        )
    return {**endpoint_out(endpoint), "secret": secret}


_ENDPOINT_SHOWN = (
    ENDPOINT.c.id,
    ENDPOINT.c.url,
    ENDPOINT.c.description,
    ENDPOINT.c.event_types,
    ENDPOINT.c.status,
    ENDPOINT.c.disabled_reason,
    ENDPOINT.c.previous_secret_expires_at,
    ENDPOINT.c.created_at,
    ENDPOINT.c.updated_at,
)
_OWN_ENDPOINT = select(*_ENDPOINT_SHOWN).where(
    ENDPOINT.c.id == bindparam("endpoint_id"), ENDPOINT.c.owner_id == bindparam("owner_id")
)


def _owned_endpoint_sync(
    connection: Connection, *, principal: Principal, endpoint_id: uuid.UUID
) -> Any:
    """The caller's endpoint (a row with the shown `WebhookEndpoint` names, never its
    secret); 404 for anyone else's."""
    params = {"endpoint_id": endpoint_id, "owner_id": principal.user_id}
    row = reads.first(connection, _OWN_ENDPOINT, params)
    if row is None:
        raise NotFound("No such webhook endpoint.")
    return row


def list_endpoints_sync(
    connection: Connection, *, principal: Principal, page: PageRequest
) -> tuple[list[dict[str, Any]], str | None]:
    """The caller's endpoints in id order."""
    key = page.after(cursor_uuid)
    rows = connection.execute(
        select(*_ENDPOINT_SHOWN)
        .where(ENDPOINT.c.owner_id == principal.user_id, keyset_after((ENDPOINT.c.id,), key))
        .order_by(ENDPOINT.c.id)
        .limit(page.limit + 1)
    ).all()
    items, next_cursor = page.slice(rows, key=lambda row: (row.id,))
    return [endpoint_out(row) for row in items], next_cursor


def get_endpoint_sync(
    connection: Connection, *, principal: Principal, endpoint_id: uuid.UUID
) -> dict[str, Any]:
    return endpoint_out(
        _owned_endpoint_sync(connection, principal=principal, endpoint_id=endpoint_id)
    )


async def update_endpoint(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: uuid.UUID,
    request: WebhookEndpointPatch,
    settings: Settings,
    client: ClientInfo,
) -> dict[str, Any]:
    if request.url is not None:
        await urls.resolve(request.url, allow_private=settings.webhook_allow_private)
    async with write_transaction(session):
        endpoint = await _owned_endpoint(
            session, principal=principal, endpoint_id=endpoint_id, lock=True
        )
        if request.url is not None:
            endpoint.url = request.url
        if request.event_types is not None:
            endpoint.event_types = json.dumps(sorted(set(request.event_types)))
        if "description" in request.model_fields_set:
            endpoint.description = request.description
        if request.status is not None and request.status != endpoint.status:
            endpoint.status = request.status
            endpoint.disabled_reason = "owner" if request.status == "disabled" else None
        endpoint.updated_at = utcnow()
        await audit.record(
            session,
            event_type="webhook_endpoint.updated",
            actor_id=principal.user_id,
            target_type="webhook_endpoint",
            target_id=endpoint_id,
            client=client,
            details=request.model_dump(mode="json", exclude_unset=True),
        )
    return endpoint_out(endpoint)


async def delete_endpoint(
    session: AsyncSession, *, principal: Principal, endpoint_id: uuid.UUID, client: ClientInfo
) -> None:
    async with write_transaction(session):
        await _owned_endpoint(session, principal=principal, endpoint_id=endpoint_id, lock=True)
        deliveries = select(DELIVERY.c.id).where(DELIVERY.c.endpoint_id == endpoint_id)
        await session.execute(delete(ATTEMPT).where(ATTEMPT.c.delivery_id.in_(deliveries)))
        await session.execute(delete(DELIVERY).where(DELIVERY.c.endpoint_id == endpoint_id))
        await session.execute(delete(ENDPOINT).where(ENDPOINT.c.id == endpoint_id))
        await audit.record(
            session,
            event_type="webhook_endpoint.deleted",
            actor_id=principal.user_id,
            target_type="webhook_endpoint",
            target_id=endpoint_id,
            client=client,
        )


async def rotate_secret(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: uuid.UUID,
    request: RotateSecretIn,
    settings: Settings,
    client: ClientInfo,
) -> dict[str, Any]:
    grace_s = (
        request.grace_period_s
        if request.grace_period_s is not None
        else settings.webhook_secret_grace_s
    )
    secret = signing.new_secret()
    key_id, sealed = signing.seal(settings, secret, endpoint_id=str(endpoint_id))
    now = utcnow()
    async with write_transaction(session):
        endpoint = await _owned_endpoint(
            session, principal=principal, endpoint_id=endpoint_id, lock=True
        )
        endpoint.previous_secret_key_id = endpoint.secret_key_id
        endpoint.previous_secret_sealed = endpoint.secret_sealed
        endpoint.previous_secret_expires_at = now + dt.timedelta(seconds=grace_s)
        endpoint.secret_key_id = key_id
        endpoint.secret_sealed = sealed
        endpoint.updated_at = now
        await audit.record(
            session,
            event_type="webhook_endpoint.secret_rotated",
            actor_id=principal.user_id,
            target_type="webhook_endpoint",
            target_id=endpoint_id,
            client=client,
            details={"grace_period_s": grace_s},
        )
    return {**endpoint_out(endpoint), "secret": secret}


def list_deliveries_sync(
    connection: Connection,
    *,
    principal: Principal,
    endpoint_id: uuid.UUID,
    page: PageRequest,
    status: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, each with its latest attempts."""
    _owned_endpoint_sync(connection, principal=principal, endpoint_id=endpoint_id)
    key = page.after(cursor_int)
    statement = (
        select(DELIVERY, EVENT.c.type.label("event_type"))
        .join(EVENT, EVENT.c.id == DELIVERY.c.event_id)
        .where(
            DELIVERY.c.endpoint_id == endpoint_id,
            keyset_after((DELIVERY.c.position,), key, descending=True),
        )
    )
    if status is not None:
        statement = statement.where(DELIVERY.c.status == status)
    rows = connection.execute(
        statement.order_by(DELIVERY.c.position.desc()).limit(page.limit + 1)
    ).all()
    items, next_cursor = page.slice(rows, key=lambda row: (row.position,))
    attempts: dict[uuid.UUID, list[dict[str, Any]]] = {row.id: [] for row in items}
    if items:
        for attempt in connection.execute(
            select(ATTEMPT)
            .where(ATTEMPT.c.delivery_id.in_(list(attempts)))
            .order_by(ATTEMPT.c.id.desc())
        ).all():
            shown = attempts[attempt.delivery_id]
            if len(shown) < ATTEMPTS_SHOWN:
                shown.append(attempt._asdict())
    return [
        {
            **row._asdict(),
            "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
            "attempt_log": attempts[row.id],
        }
        for row in items
    ], next_cursor


async def retry_delivery(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    client: ClientInfo,
) -> None:
    """Send the delivery again as soon as possible (whatever its status)."""
    async with write_transaction(session):
        await _owned_endpoint(session, principal=principal, endpoint_id=endpoint_id)
        changed = await session.execute(
            update(DELIVERY)
            .where(and_(DELIVERY.c.id == delivery_id, DELIVERY.c.endpoint_id == endpoint_id))
            .values(status="pending", next_attempt_at=utcnow())
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("No such delivery.")
        await audit.record(
            session,
            event_type="webhook_delivery.retried",
            actor_id=principal.user_id,
            target_type="webhook_delivery",
            target_id=delivery_id,
            client=client,
        )
