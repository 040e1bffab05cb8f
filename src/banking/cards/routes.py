"""Cards for members (issue, read, freeze, limits), admins (freeze any card) and the card
network (authorize, capture, void), which authenticates with `X-Network-Key`."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.cards import service as cards
from banking.cards.models import AuthorizationStatus
from banking.cards.schemas import (
    AuthorizationIn,
    AuthorizationOut,
    AuthorizationPage,
    CaptureIn,
    CardIssuedOut,
    CardIssueIn,
    CardLimitsIn,
    CardOut,
    CardPage,
    RefundIn,
    RefundOut,
)
from banking.core.deps import AppSettings, Client, DbSession, Now, now_of
from banking.core.errors import PROBLEM_JSON, DomainError
from banking.core.idempotency import REPLAYED_HEADER, require_key, validate_key
from banking.core.pagination import Pagination
from banking.core.ratelimit import RateLimit
from banking.identity.deps import AdminUser, CurrentUser, MemberRead, run_read
from banking.identity.service import Principal

router = APIRouter(prefix="/v1", tags=["cards"])
# Counted per client address before the key is checked, so guessing the key is limited too.
network_router = APIRouter(prefix="/v1", tags=["card network"], dependencies=[RateLimit("network")])


class InvalidNetworkKey(DomainError):
    status = 401
    code = "invalid_network_key"
    title = "The card network endpoints need a valid X-Network-Key header."


_network_key = APIKeyHeader(
    name="X-Network-Key",
    auto_error=False,
    scheme_name="NetworkKey",
    description="The card network's shared key (CARD_NETWORK_API_KEY); not a member token.",
)


async def network_client(
    settings: AppSettings, key: Annotated[str | None, Depends(_network_key)]
) -> str:
    if not cards.network_key_matches(settings, key):
        raise InvalidNetworkKey()
    return "card-network"


Network = Annotated[str, Depends(network_client)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A unique key per logical request; retries reuse it and get the first answer.",
        max_length=1000,
    ),
]
# Authorizations and captures reserve or move money: the key is required.
RequiredKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Required: a unique key per logical request; retries reuse it and get the first "
            "answer. Without it the answer is 400 idempotency_key_required."
        ),
        max_length=1000,
    ),
]


def card_out(view: cards.CardView) -> CardOut:
    card = view.card
    return CardOut(
        id=card.id,
        account_id=card.account_id,
        type=card.type,
        brand=card.brand,
        status=card.status,
        frozen_by_admin=card.frozen_by_admin,
        frozen_reason=card.frozen_reason,
        cardholder_name=card.cardholder_name,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        currency=view.currency,
        per_transaction_limit=card.per_transaction_limit_minor,
        daily_limit=card.daily_limit_minor,
        created_at=card.created_at,
        cancelled_at=card.cancelled_at,
    )


@router.post("/accounts/{account_id}/cards", status_code=201, response_model=CardIssuedOut)
async def issue_card(
    account_id: uuid.UUID,
    body: CardIssueIn,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
) -> CardIssuedOut:
    """Issue a debit card on one of your active accounts.

    This response is the only time the full card number (`pan`) and `cvv` are shown:
    store them now. Afterwards the card is shown by its `last4`, brand and expiry only."""
    issued = await cards.issue_card(
        session,
        principal=user,
        account_id=account_id,
        request=body,
        settings=settings,
        client=client,
        now=now,
    )
    out = card_out(cards.CardView(issued.card, issued.currency))
    return CardIssuedOut(**out.model_dump(), pan=issued.pan, cvv=issued.cvv)


@router.get("/cards", response_model=CardPage)
async def list_cards(
    read: MemberRead, page: Pagination, account_id: uuid.UUID | None = None
) -> Response:
    """Your cards, newest first (masked), optionally only those of one account."""

    def listing(connection: Connection, principal: Principal) -> CardPage:
        views, next_cursor = cards.list_cards_sync(
            connection, principal, page=page, account_id=account_id
        )
        return CardPage(items=[card_out(view) for view in views], next_cursor=next_cursor)

    return await read.json(listing)


@router.get("/cards/{card_id}", response_model=CardOut)
async def get_card(card_id: uuid.UUID, read: MemberRead) -> Response:
    """One of your cards (masked: last4, brand, expiry, status, limits)."""

    def detail(connection: Connection, principal: Principal) -> CardOut:
        return card_out(cards.get_card_sync(connection, principal, card_id=card_id))

    return await read.json(detail)


@router.post("/cards/{card_id}/freeze", response_model=CardOut)
async def freeze_card(
    card_id: uuid.UUID, user: CurrentUser, session: DbSession, client: Client
) -> CardOut:
    """Freeze the card: every authorization is declined until you unfreeze it."""
    return card_out(
        await cards.freeze_card(session, principal=user, card_id=card_id, client=client)
    )


@router.post("/cards/{card_id}/unfreeze", response_model=CardOut)
async def unfreeze_card(
    card_id: uuid.UUID, user: CurrentUser, session: DbSession, client: Client
) -> CardOut:
    """Unfreeze the card (not when the bank froze it: `card_frozen_by_admin`)."""
    return card_out(
        await cards.unfreeze_card(session, principal=user, card_id=card_id, client=client)
    )


@router.post("/cards/{card_id}/cancel", response_model=CardOut)
async def cancel_card(
    card_id: uuid.UUID, user: CurrentUser, session: DbSession, client: Client, now: Now
) -> CardOut:
    """Cancel the card for good. Its open holds are voided in the same commit: the held
    amounts are available again and the card network can no longer capture them."""
    return card_out(
        await cards.cancel_card(session, principal=user, card_id=card_id, client=client, now=now)
    )


@router.patch("/cards/{card_id}/limits", response_model=CardOut)
async def set_limits(
    card_id: uuid.UUID, body: CardLimitsIn, user: CurrentUser, session: DbSession, client: Client
) -> CardOut:
    """Set spending limits in minor units of the account's currency: `per_transaction_limit`
    and `daily_limit` (per UTC day, open holds plus captures). Omit a field to keep it,
    send null to remove it."""
    return card_out(
        await cards.set_limits(
            session, principal=user, card_id=card_id, request=body, client=client
        )
    )


@router.get("/cards/{card_id}/authorizations", response_model=AuthorizationPage)
async def list_authorizations(
    card_id: uuid.UUID,
    read: MemberRead,
    page: Pagination,
    status: Annotated[AuthorizationStatus | None, Query()] = None,
) -> Response:
    """The card's payment attempts, newest first: approved (held), declined (with the
    reason), captured, voided, expired."""
    now = read.now

    def listing(connection: Connection, principal: Principal) -> AuthorizationPage:
        items, next_cursor = cards.card_authorizations_sync(
            connection, principal, card_id=card_id, status=status, page=page, now=now
        )
        return AuthorizationPage(items=items, next_cursor=next_cursor)

    return await read.json(listing)


@router.post("/admin/cards/{card_id}/freeze", response_model=CardOut, tags=["admin"])
async def admin_freeze_card(
    card_id: uuid.UUID, admin: AdminUser, session: DbSession, client: Client
) -> CardOut:
    """Freeze any card (admin). Only an admin can lift this freeze."""
    return card_out(
        await cards.freeze_card(
            session, principal=admin, card_id=card_id, client=client, as_admin=True
        )
    )


@router.post("/admin/cards/{card_id}/unfreeze", response_model=CardOut, tags=["admin"])
async def admin_unfreeze_card(
    card_id: uuid.UUID, admin: AdminUser, session: DbSession, client: Client
) -> CardOut:
    """Unfreeze any card (admin)."""
    return card_out(
        await cards.unfreeze_card(
            session, principal=admin, card_id=card_id, client=client, as_admin=True
        )
    )


# -- the card network

_AUTHORIZE_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "The decision, approved or declined, recorded either way. A decline "
        "is an answer, not an error: `status` is `declined` and `decline_reason` says why "
        "(card_unknown, card_cancelled, card_frozen, cvv_attempts_exceeded, "
        "expiry_mismatch, card_expired, cvv_mismatch, card_transaction_limit_exceeded, "
        "card_daily_limit_exceeded, amount_too_large, account_closed, account_frozen, "
        "currency_mismatch, insufficient_funds, daily_limit_exceeded)."
    },
}
_SETTLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "authorization_not_open, authorization_expired, or a recorded "
        "ledger decline of the capture (account_frozen, daily_limit_exceeded, ...)."
    },
    422: {"description": "Invalid body, capture_exceeds_authorization, currency_mismatch."},
}


def _answer(result: cards.NetworkAnswer) -> Response:
    headers = {REPLAYED_HEADER: "true"} if result.replayed else {}
    media_type = "application/json" if result.status < 400 else PROBLEM_JSON
    return Response(result.body, status_code=result.status, media_type=media_type, headers=headers)


@network_router.post(
    "/card-authorizations",
    status_code=201,
    response_model=AuthorizationOut,
    responses=_AUTHORIZE_RESPONSES,
)
async def authorize(
    body: AuthorizationIn,
    _network: Network,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
    idempotency_key: RequiredKeyHeader = None,
) -> Response:
    """Authorize a card payment (card network only). Approval holds `amount` on the card's
    account for CARD_HOLD_DAYS: the available balance drops, the balance does not.
    The `Idempotency-Key` header is required (400 `idempotency_key_required` without it):
    a retry with the same key and body replays the first answer."""
    result = await cards.authorize(
        session,
        request=body,
        idempotency_key=require_key(idempotency_key),
        settings=settings,
        client=client,
        now=now,
    )
    return _answer(result)


@network_router.get("/card-authorizations/{authorization_id}", response_model=AuthorizationOut)
async def get_authorization(
    authorization_id: uuid.UUID, _network: Network, request: Request
) -> Response:
    """One authorization (card network only)."""
    read = functools.partial(
        cards.get_authorization_sync, authorization_id=authorization_id, now=now_of(request)
    )
    out = await run_read(request, read)
    return Response(out.model_dump_json(), media_type="application/json")


@network_router.post(
    "/card-authorizations/{authorization_id}/capture",
    response_model=AuthorizationOut,
    responses=_SETTLE_RESPONSES,
)
async def capture(
    authorization_id: uuid.UUID,
    body: CaptureIn,
    _network: Network,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
    idempotency_key: RequiredKeyHeader = None,
) -> Response:
    """Capture an approved authorization, fully or partly (`amount` ≤ authorized): one
    ledger entry moves `amount` to the card-network settlement account and the whole hold
    is released in the same commit. The `Idempotency-Key` header is required (400
    `idempotency_key_required` without it)."""
    result = await cards.capture(
        session,
        authorization_id=authorization_id,
        amount_minor=body.amount,
        idempotency_key=require_key(idempotency_key),
        settings=settings,
        client=client,
        now=now,
    )
    return _answer(result)


@network_router.post(
    "/card-authorizations/{authorization_id}/refund",
    status_code=201,
    response_model=RefundOut,
    responses={
        409: {
            "description": "authorization_not_captured; already_reversed (the refunds would "
            "add up to more than the capture); a recorded ledger decline (account_closed)."
        },
    },
)
async def refund(
    authorization_id: uuid.UUID,
    _network: Network,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
    idempotency_key: RequiredKeyHeader = None,
    body: RefundIn | None = None,
) -> Response:
    """Refund a captured card payment, whole or in part (card network only): a new
    `card_refund` entry moves `amount` (all that is left when omitted) from the card-network
    settlement account back to the card's account, linked to the capture entry. Refunds
    (and staff reversals) of one capture never add up to more than was captured: beyond
    that the answer is 409 `already_reversed`. The `Idempotency-Key` header is required."""
    result = await cards.refund(
        session,
        authorization_id=authorization_id,
        amount_minor=body.amount if body else None,
        idempotency_key=require_key(idempotency_key),
        settings=settings,
        client=client,
        now=now,
    )
    return _answer(result)


@network_router.post(
    "/card-authorizations/{authorization_id}/void",
    response_model=AuthorizationOut,
    responses=_SETTLE_RESPONSES,
)
async def void(
    authorization_id: uuid.UUID,
    _network: Network,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Void an approved authorization: its hold is released, nothing is debited."""
    result = await cards.void(
        session,
        authorization_id=authorization_id,
        idempotency_key=validate_key(idempotency_key, required=False),
        settings=settings,
        client=client,
        now=now,
    )
    return _answer(result)
