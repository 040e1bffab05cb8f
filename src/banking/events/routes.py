"""HTTP: /v1/events (list, one, the Server-Sent Events stream) and /v1/webhook-endpoints."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import AwareDatetime
from sqlalchemy.engine import Connection
from starlette.responses import Response, StreamingResponse

from banking.core import reads
from banking.core.deps import AppSettings, Client, DbSession
from banking.core.errors import InvalidRequest
from banking.core.pagination import Pagination
from banking.events import service as events
from banking.events.schemas import (
    DeliveryPage,
    EventOut,
    EventPage,
    EventPattern,
    RotateSecretIn,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointOut,
    WebhookEndpointPage,
    WebhookEndpointPatch,
)
from banking.identity.deps import CurrentUser, MemberRead
from banking.identity.service import Principal

router = APIRouter(tags=["events"])
STREAM_POLL_S = 0.5
STREAM_KEEPALIVE_S = 15.0


class StaffFilterOnly(InvalidRequest):
    code = "staff_filter_only"
    title = "Only staff may filter events by owner."


@router.get("/v1/events", response_model=EventPage)
async def list_events(
    read: MemberRead,
    page: Pagination,
    type: Annotated[
        EventPattern | None,
        Query(description="An exact type (`transfer.posted`) or a family (`card.*`)."),
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Only events created at or after (RFC 3339).")
    ] = None,
    after: Annotated[
        uuid.UUID | None,
        Query(description="Only events after this one (catch up from the last id you saw)."),
    ] = None,
    owner_id: Annotated[uuid.UUID | None, Query(description="Staff only: one user's.")] = None,
    account_id: Annotated[uuid.UUID | None, Query(description="Events about one account.")] = None,
) -> Response:
    """Your events, oldest first (staff: every user's, with filters). Event ids are stable;
    pass the last one you processed as `after` to catch up."""
    since_utc = since.astimezone(dt.UTC) if since else None

    def listing(connection: Connection, principal: Principal) -> EventPage:
        if owner_id is not None and not principal.is_staff:
            raise StaffFilterOnly()
        items, next_cursor = events.list_events_sync(
            connection,
            principal=principal,
            page=page,
            event_type=type,
            since=since_utc,
            after=after,
            owner_id=owner_id,
            account_id=account_id,
        )
        return EventPage(
            items=[EventOut.model_validate(item) for item in items], next_cursor=next_cursor
        )

    return await read.json(listing)


@router.get(
    "/v1/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream."}},
)
async def stream_events(
    request: Request,
    read: MemberRead,
    last_event_id: Annotated[
        uuid.UUID | None,
        Header(description="Resume after this event (browsers send it on reconnect)."),
    ] = None,
) -> StreamingResponse:
    """Your events as Server-Sent Events (`id`, `event` = type, `data` = the event), as they
    happen; with `Last-Event-ID` it first replays what came after that event."""

    def start(connection: Connection, principal: Principal) -> tuple[Principal, int]:
        position = None
        if last_event_id is not None:
            position = events.position_of_sync(
                connection, principal=principal, event_id=last_event_id
            )
        if position is None:
            position = events.latest_position_sync(connection)
        return principal, position

    # The session check and the starting point on the read path (no ORM session), and
    # each poll on a read-only connection of its own, held for one statement.
    principal, position = await read.run(start)
    db = request.app.state.db

    # A stream lasts at most one access token's lifetime: a revoked session's stream ends
    # with it, and the client reconnects with a fresh token (and Last-Event-ID).
    ends_at = time.monotonic() + request.app.state.settings.access_token_ttl_s

    async def generate(position: int) -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        quiet_since = time.monotonic()
        # Ends when the client goes, or when the process drains for a shutdown (the
        # client reconnects, with Last-Event-ID, to another process or this one again).
        while (
            not request.app.state.draining
            and time.monotonic() < ends_at
            and not await request.is_disconnected()
        ):
            rows = await reads.run(
                db,
                functools.partial(events.events_after_sync, principal=principal, position=position),
            )
            for row in rows:
                body = EventOut.model_validate(events.event_out(row)).model_dump_json()
                yield f"id: {row.id}\nevent: {row.type}\ndata: {body}\n\n".encode()
                position = row.position
            if rows:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since >= STREAM_KEEPALIVE_S:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(STREAM_POLL_S)

    return StreamingResponse(
        generate(position),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/events/{event_id}", response_model=EventOut)
async def get_event(event_id: uuid.UUID, read: MemberRead) -> Response:
    """One event (yours; staff: anyone's)."""

    def detail(connection: Connection, principal: Principal) -> EventOut:
        return EventOut.model_validate(
            events.get_event_sync(connection, principal=principal, event_id=event_id)
        )

    return await read.json(detail)


@router.post("/v1/webhook-endpoints", status_code=201, response_model=WebhookEndpointCreated)
async def create_webhook_endpoint(
    body: WebhookEndpointIn,
    principal: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> WebhookEndpointCreated:
    """Register a URL to receive your events, signed. The answer carries the signing
    `secret`: it is shown only here (and on rotation)."""
    return WebhookEndpointCreated.model_validate(
        await events.create_endpoint(
            session, principal=principal, request=body, settings=settings, client=client
        )
    )


@router.get("/v1/webhook-endpoints", response_model=WebhookEndpointPage)
async def list_webhook_endpoints(read: MemberRead, page: Pagination) -> Response:
    """Your webhook endpoints."""

    def listing(connection: Connection, principal: Principal) -> WebhookEndpointPage:
        items, next_cursor = events.list_endpoints_sync(connection, principal=principal, page=page)
        return WebhookEndpointPage(
            items=[WebhookEndpointOut.model_validate(item) for item in items],
            next_cursor=next_cursor,
        )

    return await read.json(listing)


@router.get("/v1/webhook-endpoints/{endpoint_id}", response_model=WebhookEndpointOut)
async def get_webhook_endpoint(endpoint_id: uuid.UUID, read: MemberRead) -> Response:
    """One of your webhook endpoints (never its secret)."""

    def detail(connection: Connection, principal: Principal) -> WebhookEndpointOut:
        return WebhookEndpointOut.model_validate(
            events.get_endpoint_sync(connection, principal=principal, endpoint_id=endpoint_id)
        )

    return await read.json(detail)


@router.patch("/v1/webhook-endpoints/{endpoint_id}", response_model=WebhookEndpointOut)
async def update_webhook_endpoint(
    endpoint_id: uuid.UUID,
    body: WebhookEndpointPatch,
    principal: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> WebhookEndpointOut:
    """Change the URL, the event types or the description; `status` disables or enables
    deliveries."""
    return WebhookEndpointOut.model_validate(
        await events.update_endpoint(
            session,
            principal=principal,
            endpoint_id=endpoint_id,
            request=body,
            settings=settings,
            client=client,
        )
    )


@router.delete("/v1/webhook-endpoints/{endpoint_id}", status_code=204)
async def delete_webhook_endpoint(
    endpoint_id: uuid.UUID, principal: CurrentUser, session: DbSession, client: Client
) -> Response:
    """Delete the endpoint and its delivery history."""
    await events.delete_endpoint(
        session, principal=principal, endpoint_id=endpoint_id, client=client
    )
    return Response(status_code=204)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=WebhookEndpointCreated
)
async def rotate_webhook_secret(
    endpoint_id: uuid.UUID,
    principal: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    body: RotateSecretIn | None = None,
) -> WebhookEndpointCreated:
    """A new signing secret (shown only here). The previous one stays valid for the
    grace period: meanwhile each delivery carries both signatures."""
    return WebhookEndpointCreated.model_validate(
        await events.rotate_secret(
            session,
            principal=principal,
            endpoint_id=endpoint_id,
            request=body or RotateSecretIn(),
            settings=settings,
            client=client,
        )
    )


@router.get("/v1/webhook-endpoints/{endpoint_id}/deliveries", response_model=DeliveryPage)
async def list_webhook_deliveries(
    endpoint_id: uuid.UUID,
    read: MemberRead,
    page: Pagination,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
) -> Response:
    """The endpoint's deliveries, newest first, each with its latest attempts (status
    code, latency, an excerpt of the answer)."""

    def listing(connection: Connection, principal: Principal) -> DeliveryPage:
        items, next_cursor = events.list_deliveries_sync(
            connection, principal=principal, endpoint_id=endpoint_id, page=page, status=status
        )
        return DeliveryPage.model_validate({"items": items, "next_cursor": next_cursor})

    return await read.json(listing)


@router.post("/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry", status_code=202)
async def retry_webhook_delivery(
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: CurrentUser,
    session: DbSession,
    client: Client,
) -> Response:
    """Send the delivery again as soon as possible (at its place in the endpoint's order)."""
    await events.retry_delivery(
        session,
        principal=principal,
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
        client=client,
    )
    return Response(status_code=202)
