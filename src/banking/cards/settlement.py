"""What the network does with an approved authorization: capture (one ledger entry that
releases the hold), refund and void."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit import service as audit
from banking.cards.common import (
    AUTHORIZATION,
    AuthorizationExpired,
    AuthorizationNotCaptured,
    AuthorizationNotOpen,
    CaptureExceedsAuthorization,
)
from banking.cards.expiry import _expire_sync
from banking.cards.models import (
    AuthorizationStatus,
)
from banking.cards.network import NetworkAnswer, _Failure, _json_answer, _run_network, _store
from banking.cards.reads import (
    _authorization_events_sync,
    _read_authorization_sync,
    authorization_out,
)
from banking.cards.schemas import (
    RefundOut,
)
from banking.core.config import Settings
from banking.core.deps import ClientInfo
from banking.core.errors import NotFound, problem
from banking.core.idempotency import Claim, StoredResponse
from banking.core.logging import current_request_id
from banking.ledger import holds, reversals
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind


def _open_authorization_sync(
    connection: Connection, authorization_id: uuid.UUID, *, now: dt.datetime, client: ClientInfo
) -> Any:
    """The approved authorization, locked; raises or returns a `_Failure` otherwise."""
    row = connection.execute(
        select(AUTHORIZATION).where(AUTHORIZATION.c.id == authorization_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound("No such authorization.")
    if row.status == AuthorizationStatus.expired.value:
        raise AuthorizationExpired()
    if row.status != AuthorizationStatus.approved.value:
        raise AuthorizationNotOpen(f"The authorization is {row.status}.")
    if row.expires_at is not None and row.expires_at <= now:
        _expire_sync(connection, now=now, where=AUTHORIZATION.c.id == row.id, client=client)
        return _Failure(AuthorizationExpired())
    return row


def _capture_sync(
    connection: Connection,
    claim: Claim | None,
    *,
    authorization_id: uuid.UUID,
    amount_minor: int,
    key: str | None,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> StoredResponse | _Failure:
    row = _open_authorization_sync(connection, authorization_id, now=now, client=client)
    if isinstance(row, _Failure):
        return row
    if amount_minor > row.amount_minor:
        raise CaptureExceedsAuthorization(
            f"The authorization is for {row.amount_minor} minor units."
        )
    result = holds.capture_sync(
        connection,
        account_id=row.account_id,
        held_minor=row.amount_minor,
        amount_minor=amount_minor,
        currency=row.currency,
        limits=ledger.Limits.from_settings(settings),
        now=now,
        placed_on=row.created_at.date(),
        description=f"Card payment: {row.merchant_name}"[:140],
        idempotency_key=key,
    )
    outcome = result.outcome
    assert outcome is not None
    if outcome.decline is not None:
        # Recorded by the ledger as a declined entry; the hold stays until void or expiry.
        decline = outcome.decline
        body = problem(
            decline.status,
            decline.code,
            decline.title,
            decline.detail,
            request_id=current_request_id(),
            entry_id=str(outcome.entry_id),
            authorization_id=str(authorization_id),
        ).body
        answer = StoredResponse(decline.status, bytes(body))
        audit.record_sync(
            connection,
            event_type="card.capture",
            outcome="declined",
            target_type="card_authorization",
            target_id=authorization_id,
            client=client,
            occurred_at=now,
            details={"amount_minor": amount_minor, "reason": decline.reason},
        )
        _authorization_events_sync(
            connection, "card.authorization.capture_declined", [authorization_id]
        )
    else:
        connection.execute(
            update(AUTHORIZATION)
            .where(AUTHORIZATION.c.id == authorization_id)
            .values(
                status=AuthorizationStatus.captured.value,
                captured_minor=amount_minor,
                capture_entry_id=outcome.entry_id,
                settled_at=outcome.created_at,
            )
        )
        audit.record_sync(
            connection,
            event_type="card.capture",
            target_type="card_authorization",
            target_id=authorization_id,
            client=client,
            occurred_at=now,
            details={
                "card_id": row.card_id,
                "amount_minor": amount_minor,
                "released_minor": row.amount_minor - amount_minor,
                "currency": row.currency,
                "entry_id": outcome.entry_id,
            },
        )
        _authorization_events_sync(connection, "card.authorization.captured", [authorization_id])
        answer = _json_answer(
            200, authorization_out(_read_authorization_sync(connection, authorization_id))
        )
    _store(connection, claim, answer, now=now, settings=settings)
    return answer


async def capture(
    session: AsyncSession,
    *,
    authorization_id: uuid.UUID,
    amount_minor: int,
    idempotency_key: str | None,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> NetworkAnswer:
    return await _run_network(
        session,
        key=idempotency_key,
        path=f"/v1/card-authorizations/{authorization_id}/capture",
        body={"amount": amount_minor},
        work=lambda connection, claim: _capture_sync(
            connection,
            claim,
            authorization_id=authorization_id,
            amount_minor=amount_minor,
            key=idempotency_key,
            settings=settings,
            client=client,
            now=now,
        ),
    )


def _refund_sync(
    connection: Connection,
    claim: Claim | None,
    *,
    authorization_id: uuid.UUID,
    amount_minor: int | None,
    key: str | None,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> StoredResponse | _Failure:
    # The authorization's lock serialises refunds of one capture; the ledger checks the
    # sum again under the account's lock (reversals of the capture by staff count too).
    row = connection.execute(
        select(AUTHORIZATION).where(AUTHORIZATION.c.id == authorization_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound("No such authorization.")
    if row.status != AuthorizationStatus.captured.value or row.capture_entry_id is None:
        raise AuthorizationNotCaptured(f"The authorization is {row.status}.")
    original = reversals.read_original_sync(connection, row.capture_entry_id)
    movement = reversals.reversal_movement(
        connection,
        original,
        kind=EntryKind.card_refund,
        amount_minor=amount_minor,
        description=f"Card refund: {row.merchant_name}"[:140],
        initiator_id=None,
        idempotency_key=key,
        client=client,
    )
    result = ledger.post_sync(
        connection, movement, limits=ledger.Limits.from_settings(settings), now=now
    )
    outcome = result.outcome
    assert outcome is not None
    if outcome.decline is not None:
        decline = outcome.decline
        body = problem(
            decline.status,
            decline.code,
            decline.title,
            decline.detail,
            request_id=current_request_id(),
            entry_id=str(outcome.entry_id),
            authorization_id=str(authorization_id),
        ).body
        answer = StoredResponse(decline.status, bytes(body))
    else:
        answer = StoredResponse(
            201,
            RefundOut(
                id=outcome.entry_id,
                kind=movement.kind.value,
                status=outcome.status.value,
                authorization_id=authorization_id,
                reversed_entry_id=original.id,
                account_id=movement.target_account_id,
                amount=movement.amount_minor,
                currency=movement.currency,
                refunded_amount=ledger.reversed_sum_sync(connection, original.id),
                captured_amount=row.captured_minor,
                created_at=outcome.created_at,
            )
            .model_dump_json()
            .encode(),
        )
        _authorization_events_sync(connection, "card.authorization.refunded", [authorization_id])
    audit.record_sync(
        connection,
        event_type="card.refund",
        outcome="success" if outcome.decline is None else "declined",
        target_type="card_authorization",
        target_id=authorization_id,
        client=client,
        occurred_at=outcome.created_at,
        details={
            "amount_minor": movement.amount_minor,
            "entry_id": outcome.entry_id,
            **({"reason": outcome.decline.reason} if outcome.decline else {}),
        },
    )
    _store(connection, claim, answer, now=now, settings=settings)
    return answer


async def refund(
    session: AsyncSession,
    *,
    authorization_id: uuid.UUID,
    amount_minor: int | None,
    idempotency_key: str,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> NetworkAnswer:
    return await _run_network(
        session,
        key=idempotency_key,
        path=f"/v1/card-authorizations/{authorization_id}/refund",
        body={"amount": amount_minor},
        work=lambda connection, claim: _refund_sync(
            connection,
            claim,
            authorization_id=authorization_id,
            amount_minor=amount_minor,
            key=idempotency_key,
            settings=settings,
            client=client,
            now=now,
        ),
    )


def _void_sync(
    connection: Connection,
    claim: Claim | None,
    *,
    authorization_id: uuid.UUID,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> StoredResponse | _Failure:
    row = _open_authorization_sync(connection, authorization_id, now=now, client=client)
    if isinstance(row, _Failure):
        return row
    released_at = holds.release_sync(
        connection,
        row.account_id,
        row.amount_minor,
        uncount_minor=row.amount_minor if row.created_at.date() == now.date() else 0,
        today=now.date(),
        now=now,
    )
    connection.execute(
        update(AUTHORIZATION)
        .where(AUTHORIZATION.c.id == authorization_id)
        .values(status=AuthorizationStatus.voided.value, settled_at=released_at)
    )
    audit.record_sync(
        connection,
        event_type="card.void",
        target_type="card_authorization",
        target_id=authorization_id,
        client=client,
        occurred_at=now,
        details={"card_id": row.card_id, "released_minor": row.amount_minor},
    )
    _authorization_events_sync(connection, "card.authorization.voided", [authorization_id])
    answer = _json_answer(
        200, authorization_out(_read_authorization_sync(connection, authorization_id))
    )
    _store(connection, claim, answer, now=now, settings=settings)
    return answer


async def void(
    session: AsyncSession,
    *,
    authorization_id: uuid.UUID,
    idempotency_key: str | None,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> NetworkAnswer:
    return await _run_network(
        session,
        key=idempotency_key,
        path=f"/v1/card-authorizations/{authorization_id}/void",
        body={},
        work=lambda connection, claim: _void_sync(
            connection,
            claim,
            authorization_id=authorization_id,
            settings=settings,
            client=client,
            now=now,
        ),
    )
