"""Reads of cards and card authorizations (the shared read path), the rows the writes lock,
and the shape cards and authorizations take in events (docs/events.md)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Any

from sqlalchemy import bindparam, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts.models import Account
from banking.cards.common import ACCOUNT, AUTHORIZATION, CARD, CardView
from banking.cards.models import (
    AuthorizationStatus,
    Card,
)
from banking.cards.schemas import (
    AuthorizationOut,
)
from banking.core import reads
from banking.core.db import UTCDateTime
from banking.core.errors import NotFound
from banking.core.pagination import PageRequest, cursor_time, cursor_uuid, keyset_after
from banking.events import outbox
from banking.identity.service import Principal
from banking.ledger import lapsed


def card_event_data(card: Any) -> dict[str, Any]:
    """A card as events show it (docs/events.md): never the number nor the CVV."""
    return {
        "id": card.id,
        "account_id": card.account_id,
        "type": card.type,
        "brand": card.brand,
        "status": card.status,
        "frozen_by_admin": card.frozen_by_admin,
        "frozen_reason": card.frozen_reason,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "created_at": card.created_at,
    }


def _card_event_sync(connection: Connection, event_type: str, card_id: uuid.UUID) -> None:
    card = connection.execute(select(CARD).where(CARD.c.id == card_id)).one()
    outbox.emit_sync(
        connection,
        type=event_type,
        owner_id=card.owner_id,
        subject_type="card",
        subject_id=card.id,
        account_id=card.account_id,
        data=card_event_data(card),
    )


def _authorization_events_sync(
    connection: Connection, event_type: str, authorization_ids: list[uuid.UUID]
) -> None:
    """`card.authorization.<what>` for each authorization, shaped like the API's answer."""
    if not authorization_ids:
        return
    rows = connection.execute(
        _authorization_query()
        .where(AUTHORIZATION.c.id.in_(authorization_ids))
        .order_by(AUTHORIZATION.c.id)
    ).all()
    for row in rows:
        outbox.emit_sync(
            connection,
            type=event_type,
            owner_id=row.card_owner_id,
            subject_type="card_authorization",
            subject_id=row.id,
            account_id=row.account_id,
            data=authorization_out(row).model_dump(mode="json"),
        )


def _card_query() -> Any:
    return select(Card, Account.currency).join(Account, Account.id == Card.account_id)


# Reads (the shared read path, identity/deps.py `Read`): Core statements, no ORM.
_CARD_COLUMNS = (
    *(
        column
        for column in CARD.c
        if column.name not in ("pan_ciphertext", "pan_digest", "pan_key_id", "cvv_digest")
    ),
    ACCOUNT.c.currency,
)


def _card_read() -> Any:
    return select(*_CARD_COLUMNS).select_from(CARD.join(ACCOUNT, ACCOUNT.c.id == CARD.c.account_id))


_CARD_BY_ID = _card_read().where(CARD.c.id == bindparam("card_id"))


@functools.cache
def _cards_statement(*, after: bool, by_account: bool) -> Any:
    """The member's cards page, built once per shape (values are bound parameters)."""
    statement = _card_read().where(CARD.c.owner_id == bindparam("owner_id"))
    if by_account:
        statement = statement.where(CARD.c.account_id == bindparam("account_id"))
    if after:
        key = (
            bindparam("after_created_at", type_=CARD.c.created_at.type),
            bindparam("after_id", type_=CARD.c.id.type),
        )
        statement = statement.where(
            keyset_after((CARD.c.created_at, CARD.c.id), key, descending=True)
        )
    return statement.order_by(CARD.c.created_at.desc(), CARD.c.id.desc()).limit(bindparam("limit"))


def list_cards_sync(
    connection: Connection,
    principal: Principal,
    *,
    page: PageRequest,
    account_id: uuid.UUID | None,
) -> tuple[list[CardView], str | None]:
    after = page.after(cursor_time, cursor_uuid)
    params: dict[str, Any] = {"owner_id": principal.user_id, "limit": page.limit + 1}
    if account_id is not None:
        params["account_id"] = account_id
    if after is not None:
        params["after_created_at"], params["after_id"] = after
    statement = _cards_statement(after=after is not None, by_account=account_id is not None)
    rows = reads.rows(connection, statement, params)
    items, next_cursor = page.slice(rows, key=lambda row: (row.created_at, row.id))
    return [CardView(row, row.currency) for row in items], next_cursor


def get_card_sync(connection: Connection, principal: Principal, *, card_id: uuid.UUID) -> CardView:
    row = reads.first(connection, _CARD_BY_ID, {"card_id": card_id})
    if row is None or row.owner_id != principal.user_id:
        raise NotFound("No such card.")
    return CardView(row, row.currency)


async def _find_card(session: AsyncSession, card_id: uuid.UUID) -> CardView | None:
    row = (await session.execute(_card_query().where(Card.id == card_id))).first()
    return None if row is None else CardView(row[0], row[1])


async def _locked_card(
    session: AsyncSession, *, card_id: uuid.UUID, owner_id: uuid.UUID | None
) -> Card:
    card = (
        await session.execute(select(Card).where(Card.id == card_id).with_for_update())
    ).scalar_one_or_none()
    if card is None or (owner_id is not None and card.owner_id != owner_id):
        raise NotFound("No such card.")
    return card


def card_authorizations_sync(
    connection: Connection,
    principal: Principal,
    *,
    card_id: uuid.UUID,
    status: AuthorizationStatus | None,
    page: PageRequest,
    now: dt.datetime,
) -> tuple[list[AuthorizationOut], str | None]:
    """The card's authorizations as of `now` (a lapsed hold shows as expired)."""
    get_card_sync(connection, principal, card_id=card_id)
    after = page.after(cursor_time, cursor_uuid)
    moment = literal(now, UTCDateTime())
    statement = _authorization_read(moment).where(
        AUTHORIZATION.c.card_id == card_id,
        keyset_after((AUTHORIZATION.c.created_at, AUTHORIZATION.c.id), after, descending=True),
    )
    if status is not None:
        statement = statement.where(lapsed.shown_status(moment) == status.value)
    rows = connection.execute(
        statement.order_by(AUTHORIZATION.c.created_at.desc(), AUTHORIZATION.c.id.desc()).limit(
            page.limit + 1
        )
    ).all()
    items, next_cursor = page.slice(rows, key=lambda row: (row.created_at, row.id))
    return [authorization_out(row) for row in items], next_cursor


def _authorization_read(moment: Any) -> Any:
    """The authorization as a read shows it at `moment` (see ledger/lapsed.py)."""
    columns = [column for column in AUTHORIZATION.c if column.name not in ("status", "settled_at")]
    return select(
        *columns,
        lapsed.shown_status(moment).label("status"),
        lapsed.shown_settled_at(moment).label("settled_at"),
        CARD.c.last4.label("card_last4"),
    ).select_from(AUTHORIZATION.outerjoin(CARD, CARD.c.id == AUTHORIZATION.c.card_id))


# -- authorizations (the card network)


def _authorization_query() -> Any:
    return select(
        AUTHORIZATION, CARD.c.last4.label("card_last4"), CARD.c.owner_id.label("card_owner_id")
    ).join(CARD, CARD.c.id == AUTHORIZATION.c.card_id, isouter=True)


def authorization_out(row: Any) -> AuthorizationOut:
    return AuthorizationOut(
        id=row.id,
        card_id=row.card_id,
        card_last4=row.card_last4,
        status=row.status,
        decline_reason=row.decline_reason,
        amount=row.amount_minor,
        currency=row.currency,
        captured_amount=row.captured_minor,
        merchant_name=row.merchant_name,
        merchant_category=row.merchant_category,
        capture_entry_id=row.capture_entry_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        settled_at=row.settled_at,
    )


def _read_authorization_sync(connection: Connection, authorization_id: uuid.UUID) -> Any:
    return connection.execute(
        _authorization_query().where(AUTHORIZATION.c.id == authorization_id)
    ).first()


def get_authorization_sync(
    connection: Connection, *, authorization_id: uuid.UUID, now: dt.datetime
) -> AuthorizationOut:
    row = connection.execute(
        _authorization_read(literal(now, UTCDateTime())).where(
            AUTHORIZATION.c.id == authorization_id
        )
    ).first()
    if row is None:
        raise NotFound("No such authorization.")
    return authorization_out(row)


# -- expiry
