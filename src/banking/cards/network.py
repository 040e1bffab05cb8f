"""The card network's authorizations: the network key, stored Idempotency-Key answers,
card checks (expiry, CVV attempts and the freeze they trigger), limits, and the hold an
approval places through `banking.ledger.holds`."""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit import service as audit
from banking.cards.common import (
    AUTHORIZATION,
    CARD,
    CARD_CANCELLED,
    CARD_EXPIRED,
    CARD_FROZEN,
    CARD_UNKNOWN,
    COUNTED_DECLINES,
    CVV_ATTEMPTS_EXCEEDED,
    CVV_MISMATCH,
    DAILY_LIMIT,
    EXPIRY_MISMATCH,
    NETWORK_SCOPE,
    TRANSACTION_LIMIT,
    expiry_end,
    log,
    vault_for,
)
from banking.cards.expiry import _expire_sync
from banking.cards.models import (
    AuthorizationStatus,
    CardStatus,
    FrozenReason,
)
from banking.cards.reads import (
    _authorization_events_sync,
    _card_event_sync,
    _read_authorization_sync,
    authorization_out,
)
from banking.cards.schemas import (
    AuthorizationIn,
    AuthorizationOut,
)
from banking.cards.vault import Vault, VaultError
from banking.core import idempotency
from banking.core.config import Settings
from banking.core.db import database_of, new_id
from banking.core.deps import ClientInfo
from banking.core.errors import DomainError
from banking.core.idempotency import Claim, StoredResponse
from banking.ledger import holds
from banking.ledger import service as ledger
from banking.ledger.writer import writer_for


@dataclass(frozen=True, slots=True)
class NetworkAnswer:
    status: int
    body: bytes
    replayed: bool = False


class _KeyTaken(Exception):
    """Raised inside the transaction to roll it back: the key was stored meanwhile."""


@dataclass(frozen=True, slots=True)
class _Failure:
    """A refusal decided inside a transaction whose writes must still commit."""

    error: DomainError


def _json_answer(status: int, out: AuthorizationOut) -> StoredResponse:
    return StoredResponse(status, out.model_dump_json().encode())


def _store(
    connection: Connection,
    claim: Claim | None,
    answer: StoredResponse,
    *,
    now: dt.datetime,
    settings: Settings,
) -> None:
    if claim is not None and not idempotency.store_sync(
        connection, claim, answer, now=now, ttl_s=settings.idempotency_ttl_s
    ):
        raise _KeyTaken()


async def _run_network(
    session: AsyncSession,
    *,
    key: str | None,
    path: str,
    body: dict[str, Any],
    work: Callable[[Connection, Claim | None], StoredResponse | _Failure],
) -> NetworkAnswer:
    # The work runs on the ledger's writer; end any read this session started.
    await session.rollback()
    db = database_of(session)
    claim = (
        None
        if key is None
        else Claim(
            scope=NETWORK_SCOPE,
            key=key,
            fingerprint=idempotency.fingerprint(
                "POST", path, body, key=idempotency.fingerprint_key(db.settings)
            ),
        )
    )

    def locked_work(connection: Connection) -> StoredResponse | _Failure:
        if claim is not None:
            idempotency.lock_sync(connection, claim)
        return work(connection, claim)

    if claim is None:
        result = await writer_for(db).run(locked_work)
    else:
        with idempotency.IN_FLIGHT.hold(claim):
            stored = await idempotency.lookup(session, claim)
            await session.rollback()
            if stored is not None:
                return NetworkAnswer(stored.status, stored.body, replayed=True)
            try:
                result = await writer_for(db).run(locked_work)
            except _KeyTaken:
                stored = await writer_for(db).read(lambda c: idempotency.lookup_sync(c, claim))
                if stored is None:  # pragma: no cover - the record was there a moment ago
                    raise idempotency.IdempotencyKeyInFlight() from None
                return NetworkAnswer(stored.status, stored.body, replayed=True)
    if isinstance(result, _Failure):
        raise result.error
    return NetworkAnswer(result.status, result.body)


@dataclass(frozen=True, slots=True)
class _CardCheck:
    decline: str | None
    cvv_verified: bool
    """The CVV was checked and matched (a wrong one is `decline == CVV_MISMATCH`)."""


def _card_decline(
    card: Row[Any], request: AuthorizationIn, vault: Vault, now: dt.datetime
) -> _CardCheck:
    """The card's own checks, in the order a network expects them. No lock needed."""
    if card.status == CardStatus.cancelled.value:
        return _CardCheck(CARD_CANCELLED, cvv_verified=False)
    if card.status == CardStatus.frozen.value:
        # A card the bank froze for wrong CVVs says so; its CVV is not checked any more.
        if card.frozen_reason == FrozenReason.cvv_attempts_exceeded.value:
            return _CardCheck(CVV_ATTEMPTS_EXCEEDED, cvv_verified=False)
        return _CardCheck(CARD_FROZEN, cvv_verified=False)
    if (request.exp_month, request.exp_year) != (card.exp_month, card.exp_year):
        return _CardCheck(EXPIRY_MISMATCH, cvv_verified=False)
    if now >= expiry_end(card.exp_month, card.exp_year):
        return _CardCheck(CARD_EXPIRED, cvv_verified=False)
    try:
        cvv_ok = vault.verify_cvv(
            request.cvv, card_id=str(card.id), key_id=card.cvv_key_id, expected=card.cvv_digest
        )
    except VaultError:
        # The key of this card's CVV digest was removed from the configuration.
        log.error("card.cvv_key_missing", card_id=str(card.id), key_id=card.cvv_key_id)
        cvv_ok = False
    if not cvv_ok:
        return _CardCheck(CVV_MISMATCH, cvv_verified=False)
    if (
        card.per_transaction_limit_minor is not None
        and request.amount > card.per_transaction_limit_minor
    ):
        return _CardCheck(TRANSACTION_LIMIT, cvv_verified=True)
    return _CardCheck(None, cvv_verified=True)


def _count_cvv_sync(
    connection: Connection,
    card: Row[Any],
    check: _CardCheck,
    *,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> None:
    """Count a wrong CVV or a wrong expiry date on the card (locked by the caller),
    freezing it at the limit; a correct CVV (after a correct expiry) resets the count.
    Writes only when the count changes.

    A wrong expiry counts like a wrong CVV: otherwise the expiry, checked first, could be
    guessed for free and the CVV attempts spent only once it is known."""
    if check.cvv_verified:
        if card.cvv_failures:
            connection.execute(update(CARD).where(CARD.c.id == card.id).values(cvv_failures=0))
        return
    if check.decline not in COUNTED_DECLINES:
        return
    failures = card.cvv_failures + 1
    if failures < settings.card_cvv_max_failures:
        connection.execute(update(CARD).where(CARD.c.id == card.id).values(cvv_failures=failures))
        return
    connection.execute(
        update(CARD)
        .where(CARD.c.id == card.id)
        .values(
            cvv_failures=failures,
            status=CardStatus.frozen.value,
            frozen_by_admin=True,
            frozen_reason=FrozenReason.cvv_attempts_exceeded.value,
        )
    )
    audit.record_sync(
        connection,
        event_type="card.frozen",
        target_type="card",
        target_id=card.id,
        client=client,
        occurred_at=now,
        details={
            "by_admin": False,
            "reason": FrozenReason.cvv_attempts_exceeded.value,
            "cvv_failures": failures,
        },
    )
    _card_event_sync(connection, "card.frozen", card.id)
    log.warning("card.frozen_for_wrong_cvvs", card_id=str(card.id), cvv_failures=failures)


def _spent_today_sync(connection: Connection, card_id: uuid.UUID, now: dt.datetime) -> int:
    """What the card committed to today (UTC): open holds plus captured amounts."""
    day_start = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
    spent = connection.execute(
        select(
            func.coalesce(
                func.sum(AUTHORIZATION.c.amount_minor).filter(
                    AUTHORIZATION.c.status == AuthorizationStatus.approved.value
                ),
                0,
            ),
            func.coalesce(
                func.sum(AUTHORIZATION.c.captured_minor).filter(
                    AUTHORIZATION.c.status == AuthorizationStatus.captured.value
                ),
                0,
            ),
        ).where(AUTHORIZATION.c.card_id == card_id, AUTHORIZATION.c.created_at >= day_start)
    ).one()
    return int(spent[0]) + int(spent[1])


def _authorize_sync(
    connection: Connection,
    claim: Claim | None,
    *,
    request: AuthorizationIn,
    key: str | None,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> StoredResponse:
    vault = vault_for(settings)
    card = connection.execute(
        select(CARD)
        .where(CARD.c.pan_digest.in_(vault.pan_digests(request.card_number)))
        .with_for_update()
    ).first()
    decline: str | None
    card_id = account_id = None
    if card is None:
        decline = CARD_UNKNOWN
    else:
        card_id, account_id = card.id, card.account_id
        check = _card_decline(card, request, vault, now)
        decline = check.decline
        _count_cvv_sync(connection, card, check, settings=settings, client=client, now=now)
    if decline is None and card is not None:
        # Lapsed holds on the account are released before its available balance counts.
        _expire_sync(
            connection,
            now=now,
            where=(AUTHORIZATION.c.account_id == card.account_id),
            client=client,
        )
        account = holds.lock_account_sync(connection, card.account_id)
        # Stamped under the account's lock, never before its last change.
        now = holds.stamp_time(account, now)
        limits = ledger.Limits.from_settings(settings)
        if card.daily_limit_minor is not None and (
            _spent_today_sync(connection, card.id, now) + request.amount > card.daily_limit_minor
        ):
            decline = DAILY_LIMIT
        else:
            refused = holds.check_sync(
                account,
                amount_minor=request.amount,
                currency=request.currency,
                limits=limits,
                today=now.date(),
            )
            if refused is not None:
                decline = refused.reason
            else:
                holds.place_sync(connection, account, request.amount, now=now)
    authorization_id = new_id()
    approved = decline is None
    connection.execute(
        insert(AUTHORIZATION).values(
            id=authorization_id,
            card_id=card_id,
            account_id=account_id,
            status=(
                AuthorizationStatus.approved if approved else AuthorizationStatus.declined
            ).value,
            decline_reason=decline,
            amount_minor=request.amount,
            currency=request.currency,
            captured_minor=0,
            merchant_name=request.merchant_name,
            merchant_category=request.merchant_category,
            idempotency_key=key,
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.card_hold_days) if approved else None,
        )
    )
    audit.record_sync(
        connection,
        event_type="card.authorization",
        outcome="success" if approved else "declined",
        target_type="card_authorization",
        target_id=authorization_id,
        client=client,
        occurred_at=now,
        details={
            "card_id": card_id,
            "account_id": account_id,
            "amount_minor": request.amount,
            "currency": request.currency,
            "merchant_category": request.merchant_category,
            **({"reason": decline} if decline else {}),
        },
    )
    _authorization_events_sync(
        connection,
        "card.authorization.approved" if approved else "card.authorization.declined",
        [authorization_id],
    )
    answer = _json_answer(
        201, authorization_out(_read_authorization_sync(connection, authorization_id))
    )
    _store(connection, claim, answer, now=now, settings=settings)
    return answer


def _fingerprinted_body(request: AuthorizationIn, vault: Vault) -> dict[str, Any]:
    """The authorization as its Idempotency-Key fingerprint sees it: the card number and
    CVV replaced by keyed digests, so neither exists in any form in the stored record."""
    body = request.model_dump(mode="json", exclude={"card_number", "cvv"})
    body["card_digest"] = vault.pan_digest(request.card_number)
    body["cvv_digest"] = vault.presented_cvv_digest(request.card_number, request.cvv)
    return body


async def authorize(
    session: AsyncSession,
    *,
    request: AuthorizationIn,
    idempotency_key: str | None,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> NetworkAnswer:
    return await _run_network(
        session,
        key=idempotency_key,
        path="/v1/card-authorizations",
        body=_fingerprinted_body(request, vault_for(settings)),
        work=lambda connection, claim: _authorize_sync(
            connection,
            claim,
            request=request,
            key=idempotency_key,
            settings=settings,
            client=client,
            now=now,
        ),
    )


def network_key_matches(settings: Settings, given: str | None) -> bool:
    expected = settings.card_network_api_key
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
