"""Staff views across the bank.

Guarantees: support and admin staff read; only admins change anything (freeze/unfreeze,
through `banking.accounts`); every staff read of customer money data is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import service as accounts
from banking.accounts.models import Account
from banking.audit import service as audit
from banking.core.deps import ClientInfo
from banking.core.pagination import CURSOR_ERRORS, cursor_time, cursor_uuid
from banking.identity.service import Principal
from banking.ledger import cursor as cursors
from banking.ledger import history
from banking.ledger.models import JournalEntry


@dataclass(frozen=True, slots=True)
class AccountFilters:
    status: str | None = None
    currency: str | None = None
    owner_id: uuid.UUID | None = None
    number: str | None = None
    limit: int = 50
    cursor: str | None = None


async def _audit_read(
    session: AsyncSession,
    principal: Principal,
    client: ClientInfo,
    event_type: str,
    target_id: object | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await audit.record_alone(
        session,
        event_type=event_type,
        actor_id=principal.user_id,
        target_type="account" if target_id is not None else None,
        target_id=target_id,
        client=client,
        details=details,
    )


async def list_accounts(
    session: AsyncSession, *, principal: Principal, filters: AccountFilters, client: ClientInfo
) -> tuple[list[Account], str | None]:
    query = (
        select(Account)
        .where(Account.is_internal.is_(False))
        .order_by(Account.created_at.desc(), Account.id.desc())
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
                Account.created_at < created_at,
                and_(Account.created_at == created_at, Account.id < account_id),
            )
        )
    if filters.status:
        query = query.where(Account.status == filters.status)
    if filters.currency:
        query = query.where(Account.currency == filters.currency)
    if filters.owner_id:
        query = query.where(Account.owner_id == filters.owner_id)
    if filters.number:
        query = query.where(Account.number == filters.number)
    rows = list((await session.execute(query)).scalars())
    next_cursor = None
    if len(rows) > filters.limit:
        last = rows[filters.limit - 1]
        next_cursor = cursors.encode(
            {"k": "accounts", "t": last.created_at.isoformat(), "i": str(last.id)}
        )
    await _audit_read(session, principal, client, "admin.accounts_listed")
    return rows[: filters.limit], next_cursor


async def get_account(
    session: AsyncSession, *, principal: Principal, account_id: uuid.UUID, client: ClientInfo
) -> Account:
    account = await accounts.get_any(session, account_id=account_id)
    await _audit_read(session, principal, client, "admin.account_viewed", target_id=account_id)
    return account


async def list_entries(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: history.EntryFilters,
    client: ClientInfo,
) -> tuple[list[JournalEntry], str | None]:
    rows, next_cursor = await history.list_entries(session, filters=filters)
    details = {"account_id": filters.account_id} if filters.account_id else None
    await _audit_read(session, principal, client, "admin.transactions_listed", details=details)
    return rows, next_cursor
