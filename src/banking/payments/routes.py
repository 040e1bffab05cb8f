"""Deposits, withdrawals, transfers and account history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.accounts.schemas import AccountNumber
from banking.core.deps import client_info_of
from banking.core.errors import PROBLEM_JSON, InvalidRequest
from banking.core.idempotency import REPLAYED_HEADER, require_key
from banking.core.ratelimit import rate_limit
from banking.identity.deps import MemberRead
from banking.identity.service import Principal
from banking.ledger.history import Direction, HistoryFilters
from banking.ledger.models import EntryKind, EntryStatus
from banking.payments import batches
from banking.payments import service as payments
from banking.payments.schemas import (
    DepositIn,
    EntryOut,
    TransactionPage,
    TransferBatchIn,
    TransferBatchOut,
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
    "/transfer-batches",
    status_code=201,
    response_model=TransferBatchOut,
    responses={
        404: {"description": "all_or_nothing: an item names an unknown account or payee."},
        409: {"description": "all_or_nothing: an item was declined (batch_rejected)."},
        422: {"description": "Invalid body, or all_or_nothing: an item was declined."},
    },
)
async def create_transfer_batch(
    body: TransferBatchIn,
    user: MoneyUser,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Up to 1,000 transfers from your accounts in one request, each item like
    `POST /v1/transfers`, in one database transaction.

    `mode` `all_or_nothing`: if any item is declined (or names an unknown account), none
    posts; the answer is a `batch_rejected` problem naming `failed_item_index` and its
    `reason` (the declined item is recorded like a declined transfer). `independent`:
    each item posts or is declined on its own; the answer (201) lists every item's result.
    One `Idempotency-Key` covers the whole batch: a retry replays the answer.
    """
    result = await batches.transfer_batch(
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
    read: MemberRead,
    status: EntryStatus = EntryStatus.posted,
    kind: EntryKind | None = None,
    direction: Direction | None = None,
    created_from: Annotated[dt.datetime | None, Query(alias="from")] = None,
    created_to: Annotated[dt.datetime | None, Query(alias="to")] = None,
    min_amount: Annotated[
        int | None,
        Query(ge=0, le=10**15, description="Smallest absolute amount, in minor units."),
    ] = None,
    max_amount: Annotated[
        int | None,
        Query(ge=0, le=10**15, description="Largest absolute amount, in minor units."),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description=(
                "Case-insensitive text in the description, the counterparty's name (where "
                "it is shown in full) or merchant, or the last four digits of the "
                "counterparty's account number."
            ),
        ),
    ] = None,
    counterparty: Annotated[
        AccountNumber | None,
        Query(description="Only movements with this account (its full 12-digit number)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """The account's movements, newest first. `?status=declined` lists refused attempts
    with their reason. `from`/`to` bound `created_at` (from inclusive, to exclusive).
    `min_amount`/`max_amount` bound the absolute amount (inclusive; 422
    `invalid_amount_range` when min > max). Filters combine; send them again with each
    `cursor` (a cursor is only a position in the history). A page with `q` or amount
    bounds reads at most 2,000 postings: it may be short, even empty, with a
    `next_cursor` to go on; only a null `next_cursor` ends the list."""
    text = q.strip() if q is not None else None
    filters = HistoryFilters(
        status=status,
        kind=kind.value if kind else None,
        direction=direction,
        created_from=_aware(created_from),
        created_to=_aware(created_to),
        limit=limit,
        cursor=cursor,
        min_amount=min_amount,
        max_amount=max_amount,
        q=text or None,
        counterparty=counterparty,
    )

    def page(connection: Connection, principal: Principal) -> dict[str, Any]:
        # Checked once the caller is known: a stranger gets 401, not a verdict on input.
        if min_amount is not None and max_amount is not None and min_amount > max_amount:
            raise InvalidAmountRange()
        items, next_cursor = payments.account_history_sync(
            connection, principal, account_id=account_id, filters=filters
        )
        # Rows in TransactionOut's shape, serialized as they are (ledger/history.py).
        return {"items": items, "next_cursor": next_cursor}

    return await read.json(page, replica=True)


class InvalidAmountRange(InvalidRequest):
    code = "invalid_amount_range"
    title = "min_amount is greater than max_amount."


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Query timestamps without a zone are read as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
