from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, StringConstraints

from banking.audit import service as audit
from banking.audit.schemas import AuditEventOut, AuditEventPage
from banking.core.deps import Client, DbSession
from banking.core.pagination import Pagination
from banking.identity.deps import AdminUser

router = APIRouter(prefix="/v1/admin/audit", tags=["audit"])

EventType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{1,64}$")]


@router.get("", response_model=AuditEventPage)
async def list_audit_events(
    principal: AdminUser,
    session: DbSession,
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
) -> AuditEventPage:
    """The audit log, newest first (admin only). Reading it is itself audited."""
    rows, next_cursor = await audit.list_events(
        session,
        page=page,
        user_id=user,
        event_type=event_type,
        since=since.astimezone(dt.UTC) if since else None,
        until=until.astimezone(dt.UTC) if until else None,
        reader_id=principal.user_id,
        client=client,
    )
    return AuditEventPage(
        items=[AuditEventOut.model_validate(row) for row in rows], next_cursor=next_cursor
    )
