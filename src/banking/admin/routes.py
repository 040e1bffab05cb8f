"""Staff views: accounts and journal entries across the bank; freezing accounts and their
limits (lifting a protection goes through a second admin's approval)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.accounts import service as accounts
from banking.accounts.models import Account, AccountStatus
from banking.accounts.schemas import AccountNumber, account_out
from banking.admin import service as admin
from banking.admin.schemas import AdminAccountOut, AdminEntryOut, FreezeIn, LimitsIn, ReverseIn
from banking.approvals import service as approvals
from banking.approvals.schemas import ApprovalOut
from banking.core.config import Settings
from banking.core.deps import AppSettings, Client, DbSession, client_info_of
from banking.core.errors import PROBLEM_JSON
from banking.core.idempotency import REPLAYED_HEADER, require_key
from banking.core.schemas import Page
from banking.identity.deps import AdminUser, StaffRead
from banking.identity.service import Principal
from banking.ledger import accounts as ledger_accounts
from banking.ledger import history
from banking.ledger.history import EntryFilters
from banking.ledger.models import EntryKind, EntryStatus

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def _out(account: Account | Any, settings: Settings) -> AdminAccountOut:
    base = account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)
    return AdminAccountOut(**base.model_dump(), owner_id=account.owner_id)


@router.get("/accounts", response_model=Page[AdminAccountOut])
async def list_accounts(
    read: StaffRead,
    client: Client,
    status: AccountStatus | None = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    owner_id: uuid.UUID | None = None,
    number: AccountNumber | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Customer accounts across the bank, newest first (support and admin)."""
    filters = admin.AccountFilters(
        status=status.value if status else None,
        currency=currency,
        owner_id=owner_id,
        number=number,
        limit=limit,
        cursor=cursor,
    )
    settings, now = read.settings, read.now

    def page(
        connection: Connection, principal: Principal
    ) -> tuple[Principal, Page[AdminAccountOut]]:
        rows, next_cursor = admin.list_accounts_sync(connection, filters=filters, now=now)
        items = [_out(row, settings) for row in rows]
        return principal, Page[AdminAccountOut](items=items, next_cursor=next_cursor)

    staff, out = await read.run(page)
    await admin.audit_read(read.db, staff, client, "admin.accounts_listed")
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/accounts/{account_id}", response_model=AdminAccountOut)
async def get_account(account_id: uuid.UUID, read: StaffRead, client: Client) -> Response:
    """Any customer account (support and admin)."""
    settings, now = read.settings, read.now

    def detail(connection: Connection, principal: Principal) -> tuple[Principal, AdminAccountOut]:
        row = ledger_accounts.any_account_sync(connection, account_id=account_id, now=now)
        return principal, _out(row, settings)

    staff, out = await read.run(detail)
    await admin.audit_read(read.db, staff, client, "admin.account_viewed", target_id=account_id)
    return Response(out.model_dump_json(), media_type="application/json")


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


@router.post(
    "/accounts/{account_id}/unfreeze",
    status_code=202,
    response_model=ApprovalOut,
    responses={
        404: {"description": "No such account."},
        409: {
            "description": "account_status_conflict (the account is not frozen), "
            "approval_already_pending (an unfreeze of it already waits)."
        },
    },
)
async def unfreeze_account(
    account_id: uuid.UUID,
    staff: AdminUser,
    session: DbSession,
    client: Client,
    body: FreezeIn | None = None,
) -> ApprovalOut:
    """Ask to lift a freeze (admin). Lifting a protection needs a second person: the answer
    is 202 with an approval (`kind` `account_unfreeze`) and the account stays frozen until
    another admin approves it with `POST /v1/approvals/{id}/approve` (then it is unfrozen
    once, if it is still frozen; otherwise the approval is `failed`). Rejection or expiry
    leave it frozen. One unfreeze per account waits at a time."""
    return await approvals.request_unfreeze(
        session,
        principal=staff,
        account_id=account_id,
        reason=body.reason if body else None,
        client=client,
    )


@router.patch(
    "/accounts/{account_id}/limits",
    response_model=AdminAccountOut,
    responses={
        202: {
            "model": ApprovalOut,
            "description": "A raise above the bank's default: an approval "
            "(`kind` `daily_limit_raise`) that a second admin approves.",
        },
        404: {"description": "No such account."},
        409: {
            "description": "account_closed, approval_already_pending (a raise of this "
            "account's limit already waits)."
        },
    },
)
async def set_limits(
    account_id: uuid.UUID,
    body: LimitsIn,
    staff: AdminUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> Response:
    """Set an account's daily outgoing limit (admin), with a `reason` for the audit log.
    Lowering it, or setting it at or below the bank's default
    (`DAILY_OUTGOING_LIMIT_MINOR`; `null` returns to it), applies at once: 200 with the
    account. Raising it above the bank's default needs a second person: 202 with an
    approval (`kind` `daily_limit_raise`); another admin's approval sets it, unless the
    account's limit was changed meanwhile (then the approval is `failed`,
    `limit_changed`)."""
    approval = await approvals.change_daily_limit(
        session,
        principal=staff,
        account_id=account_id,
        limit_minor=body.daily_outgoing_limit,
        reason=body.reason,
        client=client,
    )
    if approval is not None:
        return Response(approval.model_dump_json(), status_code=202, media_type="application/json")
    session.expunge_all()
    account = await accounts.get_any(session, account_id=account_id)
    return Response(_out(account, settings).model_dump_json(), media_type="application/json")


@router.get("/transactions", response_model=Page[AdminEntryOut])
async def list_transactions(
    read: StaffRead,
    client: Client,
    status: EntryStatus | None = None,
    kind: EntryKind | None = None,
    account_id: uuid.UUID | None = None,
    created_from: Annotated[dt.datetime | None, Query(alias="from")] = None,
    created_to: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Journal entries across the bank (posted and declined), newest first."""
    filters = EntryFilters(
        status=status,
        kind=kind.value if kind else None,
        account_id=account_id,
        created_from=_aware(created_from),
        created_to=_aware(created_to),
        limit=limit,
        cursor=cursor,
    )

    def page(connection: Connection, principal: Principal) -> tuple[Principal, Page[AdminEntryOut]]:
        rows, next_cursor = history.list_entries_sync(connection, filters=filters)
        items = [
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
                reversed_entry_id=row.reversed_entry_id,
                balance_after=row.balance_after_minor,
            )
            for row in rows
        ]
        return principal, Page[AdminEntryOut](items=items, next_cursor=next_cursor)

    staff, out = await read.run(page)
    details = {"account_id": account_id} if account_id else None
    await admin.audit_read(read.db, staff, client, "admin.transactions_listed", details=details)
    return Response(out.model_dump_json(), media_type="application/json")


@router.post(
    "/entries/{entry_id}/reverse",
    status_code=202,
    response_model=ApprovalOut,
    responses={
        404: {"description": "No such journal entry."},
        409: {
            "description": "already_reversed (the reversals would add up to more than the "
            "entry), not_reversible."
        },
    },
)
async def reverse_entry(
    entry_id: uuid.UUID,
    body: ReverseIn,
    staff: AdminUser,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required: a unique key per reversal; retries reuse it.",
            max_length=1000,
        ),
    ] = None,
) -> Response:
    """Ask to give back a posted entry, whole or in part (admin). A reversal needs a second
    person: the answer is 202 with an approval (`kind` `entry_reversal`) that another
    admin approves with `POST /v1/approvals/{id}/approve`; only then does a new
    `reversal` entry move `amount` (all that is left when omitted) from the entry's target
    back to its source, linked by `reversed_entry_id`. The original is never edited.

    The reversals of one entry never add up to more than it: beyond what is left now the
    request is 409 `already_reversed`, and the ledger checks again when it executes
    (concurrent approvals included: the later ones are declined and recorded). A reversal
    that would take the account below zero (or below its held amount) is declined
    `insufficient_funds` when approved: the bank never opens a negative balance. A freeze
    does not stop a reversal, and a reversal does not count in the member's daily
    outgoing limit. The `Idempotency-Key` header is required; a retry replays the answer.
    """
    result = await admin.reverse_entry(
        request.app.state.db,
        principal=staff,
        entry_id=entry_id,
        request=body,
        idempotency_key=require_key(idempotency_key),
        client=client_info_of(request),
    )
    headers = {REPLAYED_HEADER: "true"} if result.replayed else {}
    media_type = "application/json" if result.status < 400 else PROBLEM_JSON
    return Response(result.body, status_code=result.status, media_type=media_type, headers=headers)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
