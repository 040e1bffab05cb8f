"""Staff views across the bank; reversals.

Guarantees: support and admin staff read; only admins change anything (freeze, through
`banking.accounts`; unfreezes, daily-limit raises above the bank's default and reversals
through `banking.approvals`: a second admin approves, then `banking.accounts` or
`banking.ledger` applies it); every staff read of customer money data is audited. A
reversal request is stored under the admin's Idempotency-Key in its own commit, so a
retry never asks twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from banking.accounts import service as accounts
from banking.admin.schemas import ReverseIn
from banking.approvals import service as approvals
from banking.audit import service as audit
from banking.core.db import Database
from banking.core.deps import ClientInfo
from banking.core.pagination import CURSOR_ERRORS, cursor_time, cursor_uuid
from banking.identity.service import Principal
from banking.ledger import accounts as ledger_accounts
from banking.ledger import cursor as cursors


@dataclass(frozen=True, slots=True)
class AccountFilters:
    status: str | None = None
    currency: str | None = None
    owner_id: uuid.UUID | None = None
    number: str | None = None
    limit: int = 50
    cursor: str | None = None


async def audit_read(
    db: Database,
    principal: Principal,
    client: ClientInfo,
    event_type: str,
    target_id: object | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """The one write of a staff read: its access record, in a transaction of its own."""
    async with db.sessionmaker() as session:
        await audit.record_alone(
            session,
            event_type=event_type,
            actor_id=principal.user_id,
            target_type="account" if target_id is not None else None,
            target_id=target_id,
            client=client,
            details=details,
        )


def list_accounts_sync(
    connection: Connection, *, filters: AccountFilters, now: dt.datetime
) -> tuple[list[Any], str | None]:
    """Customer accounts across the bank as of `now`, newest first."""
    account = accounts.ACCOUNT
    query = (
        select(*ledger_accounts.ACCOUNT_COLUMNS)
        .where(account.c.is_internal.is_(False))
        .order_by(account.c.created_at.desc(), account.c.id.desc())
        .limit(filters.limit + 1)
    )
    if filters.cursor:
        position = cursors.decode(filters.cursor, kind="accounts")
        try:
            created_at = cursor_time(position["t"])
            account_id = cursor_uuid(position["i"])
        except CURSOR_ERRORS as exc:
            raise cursors.InvalidCursor() from exc
        query = query.where(
            or_(
                account.c.created_at < created_at,
                and_(account.c.created_at == created_at, account.c.id < account_id),
            )
        )
    if filters.status:
        query = query.where(account.c.status == filters.status)
    if filters.currency:
        query = query.where(account.c.currency == filters.currency)
    if filters.owner_id:
        query = query.where(account.c.owner_id == filters.owner_id)
    if filters.number:
        query = query.where(account.c.number == filters.number)
    rows = list(connection.execute(query, {"now": now}).all())
    next_cursor = None
    if len(rows) > filters.limit:
        last = rows[filters.limit - 1]
        next_cursor = cursors.encode(
            {"k": "accounts", "t": last.created_at.isoformat(), "i": str(last.id)}
        )
    return rows[: filters.limit], next_cursor


@dataclass(frozen=True, slots=True)
class ReversalResponse:
    status: int
    body: bytes
    replayed: bool


async def reverse_entry(
    db: Database,
    *,
    principal: Principal,
    entry_id: uuid.UUID,
    request: ReverseIn,
    idempotency_key: str,
    client: ClientInfo,
) -> ReversalResponse:
    """Ask for a reversal of `entry_id` (admin): it waits for a second admin's approval
    (`banking.approvals`), which posts it through `banking.ledger.reversals`."""
    requested = await approvals.request_reversal(
        db,
        principal=principal,
        entry_id=entry_id,
        amount_minor=request.amount,
        reason=request.reason,
        idempotency_key=idempotency_key,
        client=client,
    )
    return ReversalResponse(requested.status, requested.body, requested.replayed)
