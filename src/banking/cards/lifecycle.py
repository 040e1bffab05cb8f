"""A card's life after issuance: freeze and unfreeze (by its member or the bank), cancel
(voiding its open holds in the same commit) and its spending limits."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit import service as audit
from banking.cards.common import (
    AUTHORIZATION,
    CARD,
    CardCancelled,
    CardFrozenByAdmin,
    CardStatusConflict,
    CardView,
)
from banking.cards.expiry import _expire_sync
from banking.cards.models import (
    AuthorizationStatus,
    Card,
    CardStatus,
    FrozenReason,
)
from banking.cards.reads import (
    _authorization_events_sync,
    _card_event_sync,
    _find_card,
    _locked_card,
    card_event_data,
)
from banking.cards.schemas import (
    CardLimitsIn,
)
from banking.core.db import database_of, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import NotFound
from banking.events import outbox
from banking.identity.service import Principal
from banking.ledger import holds
from banking.ledger.writer import writer_for


async def _change(
    session: AsyncSession,
    *,
    principal: Principal,
    card_id: uuid.UUID,
    as_admin: bool,
    client: ClientInfo,
    event_type: str,
    apply: Callable[[Card], dict[str, Any]],
) -> CardView:
    async with write_transaction(session):
        card = await _locked_card(
            session, card_id=card_id, owner_id=None if as_admin else principal.user_id
        )
        details = apply(card)
        await audit.record(
            session,
            event_type=event_type,
            actor_id=principal.user_id,
            target_type="card",
            target_id=card.id,
            client=client,
            details={"by_admin": as_admin, **details},
        )
        await outbox.emit(
            session,
            type=event_type,
            owner_id=card.owner_id,
            subject_type="card",
            subject_id=card.id,
            account_id=card.account_id,
            data=card_event_data(card),
        )
    view = await _find_card(session, card_id)
    assert view is not None
    return view


def _not_cancelled(card: Card) -> None:
    if card.status == CardStatus.cancelled.value:
        raise CardCancelled()


async def freeze_card(
    session: AsyncSession,
    *,
    principal: Principal,
    card_id: uuid.UUID,
    client: ClientInfo,
    as_admin: bool = False,
) -> CardView:
    def apply(card: Card) -> dict[str, Any]:
        _not_cancelled(card)
        if card.status == CardStatus.frozen.value and (card.frozen_by_admin or not as_admin):
            raise CardStatusConflict("The card is already frozen.")
        card.status = CardStatus.frozen.value
        card.frozen_by_admin = as_admin
        card.frozen_reason = (FrozenReason.admin if as_admin else FrozenReason.owner).value
        return {}

    return await _change(
        session,
        principal=principal,
        card_id=card_id,
        as_admin=as_admin,
        client=client,
        event_type="card.frozen",
        apply=apply,
    )


async def unfreeze_card(
    session: AsyncSession,
    *,
    principal: Principal,
    card_id: uuid.UUID,
    client: ClientInfo,
    as_admin: bool = False,
) -> CardView:
    def apply(card: Card) -> dict[str, Any]:
        _not_cancelled(card)
        if card.status != CardStatus.frozen.value:
            raise CardStatusConflict("The card is not frozen.")
        if card.frozen_by_admin and not as_admin:
            raise CardFrozenByAdmin()
        details: dict[str, Any] = {"frozen_reason": card.frozen_reason}
        card.status = CardStatus.active.value
        card.frozen_by_admin = False
        card.frozen_reason = None
        if as_admin and card.cvv_failures:
            # The bank reviewed the card: wrong CVVs start counting from zero again.
            details["cvv_failures_reset"] = card.cvv_failures
            card.cvv_failures = 0
        return details

    return await _change(
        session,
        principal=principal,
        card_id=card_id,
        as_admin=as_admin,
        client=client,
        event_type="card.unfrozen",
        apply=apply,
    )


def _cancel_sync(
    connection: Connection,
    *,
    card_id: uuid.UUID,
    owner_id: uuid.UUID,
    actor_id: uuid.UUID,
    client: ClientInfo,
    now: dt.datetime,
) -> None:
    """Cancel the card and void its open holds, in one transaction (lock order: the card,
    its authorizations, then the account)."""
    card = connection.execute(select(CARD).where(CARD.c.id == card_id).with_for_update()).first()
    if card is None or card.owner_id != owner_id:
        raise NotFound("No such card.")
    if card.status == CardStatus.cancelled.value:
        raise CardCancelled()
    # Lapsed holds are released as expired, as anywhere else; the rest are voided.
    _expire_sync(connection, now=now, where=AUTHORIZATION.c.card_id == card_id, client=client)
    rows = connection.execute(
        select(AUTHORIZATION.c.id, AUTHORIZATION.c.amount_minor, AUTHORIZATION.c.created_at)
        .where(
            AUTHORIZATION.c.card_id == card_id,
            AUTHORIZATION.c.status == AuthorizationStatus.approved.value,
        )
        .order_by(AUTHORIZATION.c.id)
        .with_for_update()
    ).all()
    released = sum(row.amount_minor for row in rows)
    if rows:
        today = now.date()
        holds.release_sync(
            connection,
            card.account_id,
            released,
            uncount_minor=sum(row.amount_minor for row in rows if row.created_at.date() == today),
            today=today,
            now=now,
        )
        connection.execute(
            update(AUTHORIZATION)
            .where(AUTHORIZATION.c.id.in_([row.id for row in rows]))
            .values(status=AuthorizationStatus.voided.value, settled_at=now)
        )
        _authorization_events_sync(
            connection, "card.authorization.voided", [row.id for row in rows]
        )
    for row in rows:
        audit.record_sync(
            connection,
            event_type="card.void",
            actor_id=actor_id,
            target_type="card_authorization",
            target_id=row.id,
            client=client,
            occurred_at=now,
            details={
                "card_id": card_id,
                "released_minor": row.amount_minor,
                "reason": "card_cancelled",
            },
        )
    connection.execute(
        update(CARD)
        .where(CARD.c.id == card_id)
        .values(
            status=CardStatus.cancelled.value,
            cancelled_at=now,
            frozen_by_admin=False,
            frozen_reason=None,
        )
    )
    audit.record_sync(
        connection,
        event_type="card.cancelled",
        actor_id=actor_id,
        target_type="card",
        target_id=card_id,
        client=client,
        occurred_at=now,
        details={
            "by_admin": False,
            "previous_status": card.status,
            "voided_holds": len(rows),
            "released_minor": released,
        },
    )
    _card_event_sync(connection, "card.cancelled", card_id)


async def cancel_card(
    session: AsyncSession,
    *,
    principal: Principal,
    card_id: uuid.UUID,
    client: ClientInfo,
    now: dt.datetime,
) -> CardView:
    """Cancel the card for good; its open holds are voided in the same commit."""
    # The work runs on the ledger's writer (it releases holds); end this session's read.
    await session.rollback()
    await writer_for(database_of(session)).run(
        lambda connection: _cancel_sync(
            connection,
            card_id=card_id,
            owner_id=principal.user_id,
            actor_id=principal.user_id,
            client=client,
            now=now,
        )
    )
    session.expunge_all()
    view = await _find_card(session, card_id)
    assert view is not None
    return view


async def set_limits(
    session: AsyncSession,
    *,
    principal: Principal,
    card_id: uuid.UUID,
    request: CardLimitsIn,
    client: ClientInfo,
) -> CardView:
    given = request.model_fields_set

    def apply(card: Card) -> dict[str, Any]:
        _not_cancelled(card)
        if "per_transaction_limit" in given:
            card.per_transaction_limit_minor = request.per_transaction_limit
        if "daily_limit" in given:
            card.daily_limit_minor = request.daily_limit
        return {
            "per_transaction_limit_minor": card.per_transaction_limit_minor,
            "daily_limit_minor": card.daily_limit_minor,
        }

    return await _change(
        session,
        principal=principal,
        card_id=card_id,
        as_admin=False,
        client=client,
        event_type="card.limits_changed",
        apply=apply,
    )
