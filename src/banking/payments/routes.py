"""Deposits, withdrawals, transfers and account history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from banking.core.deps import DbSession, client_info_of
from banking.core.errors import PROBLEM_JSON
from banking.core.idempotency import REPLAYED_HEADER, require_key
from banking.core.ratelimit import rate_limit
from banking.identity.deps import CurrentUser
from banking.identity.service import Principal
from banking.ledger.history import Direction, HistoryFilters
from banking.ledger.models import EntryKind, EntryStatus
from banking.payments import service as payments
from banking.payments.schemas import (
    DepositIn,
    EntryOut,
    TransactionOut,
    TransactionPage,
    TransferIn,
    TransferOut,
    WithdrawalIn,
)

# Authenticates, counts the request against the caller's money limit, gives the principal.
MoneyUser = Annotated[Principal, rate_limit("money", per="user")]
router = APIRouter(prefix="/v1", tags=["payments"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Required: a unique key per logical request (e.g. a UUID); retries reuse it. "
            "Without it the answer is 400 idempotency_key_required."
        ),
        max_length=1000,
    ),
]

_DECLINES: dict[int | str, dict[str, Any]] = {
    409: {"description": "Declined (and recorded): insufficient_funds, account_frozen, ..."},
    422: {"description": "Invalid body, or declined: currency_mismatch, amount_too_large, ..."},
}


def _response(result: payments.MovementResponse) -> Response:
    headers = {REPLAYED_HEADER: "true"} if result.replayed else {}
    media_type = "application/json" if result.status < 400 else PROBLEM_JSON
    return Response(result.body, status_code=result.status, media_type=media_type, headers=headers)


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferOut,
    responses=_DECLINES,
)
async def create_transfer(
    body: TransferIn,
    user: MoneyUser,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Move money from one of your accounts to another of yours (`target_account_id`) or
    to anyone's (`target_account_number`), in the same currency.

    The `Idempotency-Key` header is required (400 `idempotency_key_required` without it):
    a retry with the same key and body returns
    the original answer with `Idempotent-Replayed: true` and never moves money twice.
    """
    result = await payments.transfer(
        request.app.state.db,
        principal=user,
        request=body,
        idempotency_key=require_key(idempotency_key),
        client=client_info_of(request),
    )
    return _response(result)


@router.post(
    "/accounts/{account_id}/deposits",
    status_code=201,
    response_model=EntryOut,
    responses=_DECLINES,
)
async def deposit(
    account_id: uuid.UUID,
    body: DepositIn,
    user: MoneyUser,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Pay cash into one of your accounts. `amount` is in minor units (cents).

    The `Idempotency-Key` header is required (400 `idempotency_key_required` without it):
    a retry with the same key and body replays the first answer, never moving money twice.
    """
    result = await payments.deposit(
        request.app.state.db,
        principal=user,
        account_id=account_id,
        request=body,
        idempotency_key=require_key(idempotency_key),
        client=client_info_of(request),
    )
    return _response(result)


@router.post(
    "/accounts/{account_id}/withdrawals",
    status_code=201,
    response_model=EntryOut,
    responses=_DECLINES,
)
async def withdraw(
    account_id: uuid.UUID,
    body: WithdrawalIn,
    user: MoneyUser,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Take cash out of one of your accounts, up to its available balance.

    The `Idempotency-Key` header is required (400 `idempotency_key_required` without it):
    a retry with the same key and body replays the first answer, never moving money twice.
    """
    result = await payments.withdraw(
        request.app.state.db,
        principal=user,
        account_id=account_id,
        request=body,
        idempotency_key=require_key(idempotency_key),
        client=client_info_of(request),
    )
    return _response(result)


@router.get("/accounts/{account_id}/transactions", response_model=TransactionPage)
async def list_transactions(
    account_id: uuid.UUID,
    user: CurrentUser,
    session: DbSession,
    status: EntryStatus = EntryStatus.posted,
    kind: EntryKind | None = None,
    direction: Direction | None = None,
    created_from: Annotated[dt.datetime | None, Query(alias="from")] = None,
    created_to: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> TransactionPage:
    """The account's movements, newest first. `?status=declined` lists refused attempts
    with their reason. `from`/`to` bound `created_at` (from inclusive, to exclusive)."""
    items, next_cursor = await payments.account_history(
        session,
        principal=user,
        account_id=account_id,
        filters=HistoryFilters(
            status=status,
            kind=kind.value if kind else None,
            direction=direction,
            created_from=_aware(created_from),
            created_to=_aware(created_to),
            limit=limit,
            cursor=cursor,
        ),
    )
    return TransactionPage(
        items=[TransactionOut.model_validate(item) for item in items], next_cursor=next_cursor
    )


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Query timestamps without a zone are read as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
