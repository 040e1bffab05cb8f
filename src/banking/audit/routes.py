from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, StringConstraints
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.audit import service as audit
from banking.audit.schemas import AuditEventOut, AuditEventPage
from banking.core.deps import Client
from banking.core.pagination import Pagination
from banking.identity import service as identity
from banking.identity.deps import AdminRead
from banking.identity.service import Principal

router = APIRouter(prefix="/v1/admin/audit", tags=["audit"])

EventType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{1,64}$")]


@router.get("", response_model=AuditEventPage)
async def list_audit_events(
    read: AdminRead,
    client: Client,
    page: Pagination,
    user: Annotated[
        uuid.UUID | None,
        Query(description="Events by this user or about this user."),
    ] = None,
    event_type: Annotated[
        EventType | None, Query(description="Exact event type, e.g. `auth.login`.")
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Only events at or after this time (RFC 3339).")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="Only events before this time (RFC 3339).")
    ] = None,
) -> Response:
    """The audit log, newest first (admin only). Reading it is itself audited."""

    def listing(connection: Connection, principal: Principal) -> tuple[Principal, AuditEventPage]:
        rows, next_cursor = audit.list_events_sync(
            connection,
            page=page,
            user_id=user,
            event_type=event_type,
            since=since.astimezone(dt.UTC) if since else None,
            until=until.astimezone(dt.UTC) if until else None,
        )
        emails = identity.emails_of_sync(
            connection, {row.actor_id for row in rows if row.actor_id is not None}
        )
        out = AuditEventPage(
            items=[
                AuditEventOut.model_validate(row).model_copy(
                    update={"actor_email": emails.get(row.actor_id) if row.actor_id else None}
                )
                for row in rows
            ],
            next_cursor=next_cursor,
        )
        return principal, out

    admin, out = await read.run(listing)
    # Reading the audit log is itself audited: the one write of this read.
    async with read.db.sessionmaker() as session:
        await audit.record_alone(
            session,
            event_type="staff.read",
            actor_id=admin.user_id,
            target_type="audit_log",
            client=client,
            details={"rows": len(out.items)},
        )
    return Response(out.model_dump_json(), media_type="application/json")
