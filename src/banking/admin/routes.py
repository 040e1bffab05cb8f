"""Staff views: accounts and journal entries across the bank; freezing accounts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from banking.accounts import service as accounts
from banking.accounts.models import Account, AccountStatus
from banking.accounts.schemas import AccountNumber, account_out
from banking.admin import service as admin
from banking.admin.schemas import AdminAccountOut, AdminEntryOut, FreezeIn
from banking.core.deps import AppSettings, Client, DbSession
from banking.core.schemas import Page
from banking.identity.deps import AdminUser, StaffUser
from banking.ledger.history import EntryFilters
from banking.ledger.models import EntryKind, EntryStatus

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def _out(account: Account, settings: AppSettings) -> AdminAccountOut:
    base = account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)
    return AdminAccountOut(**base.model_dump(), owner_id=account.owner_id)


@router.get("/accounts", response_model=Page[AdminAccountOut])
async def list_accounts(
    staff: StaffUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    status: AccountStatus | None = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    owner_id: uuid.UUID | None = None,
    number: AccountNumber | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[AdminAccountOut]:
    """Customer accounts across the bank, newest first (support and admin)."""
    rows, next_cursor = await admin.list_accounts(
        session,
        principal=staff,
        filters=admin.AccountFilters(
            status=status.value if status else None,
            currency=currency,
            owner_id=owner_id,
            number=number,
            limit=limit,
            cursor=cursor,
        ),
        client=client,
    )
    return Page[AdminAccountOut](
        items=[_out(row, settings) for row in rows], next_cursor=next_cursor
    )


@router.get("/accounts/{account_id}", response_model=AdminAccountOut)
async def get_account(
    account_id: uuid.UUID,
    staff: StaffUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> AdminAccountOut:
    """Any customer account (support and admin)."""
    account = await admin.get_account(
        session, principal=staff, account_id=account_id, client=client
    )
    return _out(account, settings)


@router.post("/accounts/{account_id}/freeze", response_model=AdminAccountOut)
async def freeze_account(
    account_id: uuid.UUID,
    staff: AdminUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    body: FreezeIn | None = None,
) -> AdminAccountOut:
    """Freeze an active account: no money leaves it, money may still arrive (admin)."""
    account = await accounts.freeze(
        session,
        principal=staff,
        account_id=account_id,
        reason=body.reason if body else None,
        client=client,
    )
    return _out(account, settings)


@router.post("/accounts/{account_id}/unfreeze", response_model=AdminAccountOut)
async def unfreeze_account(
    account_id: uuid.UUID,
    staff: AdminUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    body: FreezeIn | None = None,
) -> AdminAccountOut:
    """Lift a freeze (admin)."""
    account = await accounts.freeze(
        session,
        principal=staff,
        account_id=account_id,
        reason=body.reason if body else None,
        client=client,
        unfreeze=True,
    )
    return _out(account, settings)


@router.get("/transactions", response_model=Page[AdminEntryOut])
async def list_transactions(
    staff: StaffUser,
    session: DbSession,
    client: Client,
    status: EntryStatus | None = None,
    kind: EntryKind | None = None,
    account_id: uuid.UUID | None = None,
    created_from: Annotated[dt.datetime | None, Query(alias="from")] = None,
    created_to: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[AdminEntryOut]:
    """Journal entries across the bank (posted and declined), newest first."""
    rows, next_cursor = await admin.list_entries(
        session,
        principal=staff,
        filters=EntryFilters(
            status=status,
            kind=kind.value if kind else None,
            account_id=account_id,
            created_from=_aware(created_from),
            created_to=_aware(created_to),
            limit=limit,
            cursor=cursor,
        ),
        client=client,
    )
    return Page[AdminEntryOut](
        items=[
            AdminEntryOut(
                id=row.id,
                kind=row.kind,
                status=row.status,
                amount=row.amount_minor,
                currency=row.currency,
                source_account_id=row.source_account_id,
                target_account_id=row.target_account_id,
                origin_account_id=row.origin_account_id,
                description=row.description,
                initiator_id=row.initiator_id,
                decline_reason=row.decline_reason,
                created_at=row.created_at,
            )
            for row in rows
        ],
        next_cursor=next_cursor,
    )


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
