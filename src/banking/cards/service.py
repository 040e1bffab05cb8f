"""Cards: issuance, the PAN vault, freezing, limits, and card payments as holds.

Guarantees: the full PAN and CVV exist in clear only while the issuance request runs and
in its response; at rest the PAN is AES-256-GCM ciphertext plus a keyed digest and the CVV
only a keyed digest (see `vault.py`); neither is ever logged or audited. A member sees and
changes only their own cards (anything else is 404). Every authorization, approved or
declined, is recorded with its reason in the same commit as its effect; an approval holds
its amount on the account through `banking.ledger.holds` (available balance drops, the
balance does not), so concurrent authorizations never hold more than the available
balance. A capture is one ledger entry to the card-network settlement account that
releases the whole hold; a void or an expiry (after CARD_HOLD_DAYS, applied lazily on
reads and authorizations, and by `banking holds expire`) releases it, and cancelling the
card voids its open holds in the same commit. A hold counts toward the account's daily
outgoing limit when it is authorized, and its capture does not count again (see
`banking.ledger.holds`). Wrong CVVs and wrong expiry dates are counted per card under the
card's row lock; at CARD_CVV_MAX_FAILURES in a row the card is frozen by the bank. With an
Idempotency-Key the network's answer is stored in the same commit and replayed; the stored
fingerprint holds keyed digests in place of the card number and CVV.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, func, insert, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import service as accounts
from banking.accounts.models import Account, AccountStatus
from banking.audit import service as audit
from banking.cards.models import (
    AuthorizationStatus,
    Card,
    CardAuthorization,
    CardStatus,
    FrozenReason,
)
from banking.cards.schemas import (
    AuthorizationIn,
    AuthorizationOut,
    CardIssueIn,
    CardLimitsIn,
    RotationReport,
)
from banking.cards.vault import Vault, VaultError, generate_cvv, generate_pan
from banking.core import idempotency
from banking.core.config import Settings
from banking.core.db import Database, database_of, new_id, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import Conflict, DomainError, InvalidRequest, NotFound, problem
from banking.core.idempotency import Claim, StoredResponse
from banking.core.logging import current_request_id, get_logger
from banking.core.pagination import PageRequest, cursor_time, cursor_uuid, keyset_after
from banking.holders.models import AccountHolder
from banking.identity.service import Principal
from banking.ledger import holds
from banking.ledger import service as ledger
from banking.ledger.writer import writer_for

CARD = cast(Table, Card.__table__)
AUTHORIZATION = cast(Table, CardAuthorization.__table__)
BRAND = "visa"
VALID_YEARS = 4
PAN_ATTEMPTS = 8
EXPIRE_BATCH = 500
ROTATE_BATCH = 200
NETWORK_SCOPE = "network:card-network"
log = get_logger(__name__)


# -- errors


class AccountNotActive(Conflict):
    code = "account_not_active"
    title = "Cards can only be issued on an active account."


class CardStatusConflict(Conflict):
    code = "card_status_conflict"
    title = "The card is not in a status that allows this change."


class CardCancelled(Conflict):
    code = "card_cancelled"
    title = "The card is cancelled; nothing about it can change."


class CardFrozenByAdmin(Conflict):
    code = "card_frozen_by_admin"
    title = "The card was frozen by the bank; only the bank can unfreeze it."


class CardholderNameRequired(InvalidRequest):
    code = "cardholder_name_required"
    title = "No account-holder profile to take the name from: give `cardholder_name`."


class AuthorizationNotOpen(Conflict):
    code = "authorization_not_open"
    title = "The authorization is no longer approved (already captured, voided or declined)."


class AuthorizationExpired(Conflict):
    code = "authorization_expired"
    title = "The authorization's hold lapsed (CARD_HOLD_DAYS) and was released."


class CaptureExceedsAuthorization(InvalidRequest):
    code = "capture_exceeds_authorization"
    title = "A capture cannot be larger than the authorized amount."


# Decline reasons of an authorization (answered as status=declined, never as an error).
CARD_UNKNOWN = "card_unknown"
CARD_CANCELLED = "card_cancelled"
CARD_FROZEN = "card_frozen"
EXPIRY_MISMATCH = "expiry_mismatch"
CARD_EXPIRED = "card_expired"
CVV_MISMATCH = "cvv_mismatch"
CVV_ATTEMPTS_EXCEEDED = "cvv_attempts_exceeded"
# Declines that count toward CARD_CVV_MAX_FAILURES (failed checks of card data).
COUNTED_DECLINES = frozenset({CVV_MISMATCH, EXPIRY_MISMATCH})
TRANSACTION_LIMIT = "card_transaction_limit_exceeded"
DAILY_LIMIT = "card_daily_limit_exceeded"


# -- the vault


@lru_cache(maxsize=8)
def _vault(current: str, previous: tuple[str, ...]) -> Vault:
    return Vault(current, list(previous))


def vault_for(settings: Settings) -> Vault:
    return _vault(settings.card_encryption_key, tuple(settings.card_encryption_previous_keys))


# -- cards (member and admin)


@dataclass(frozen=True, slots=True)
class CardView:
    card: Card
    currency: str


@dataclass(frozen=True, slots=True)
class IssuedCard:
    card: Card
    currency: str
    pan: str
    cvv: str


def expiry_end(exp_month: int, exp_year: int) -> dt.datetime:
    """A card is valid through the last moment of its expiry month (UTC)."""
    last_day = calendar.monthrange(exp_year, exp_month)[1]
    return dt.datetime(exp_year, exp_month, last_day, tzinfo=dt.UTC) + dt.timedelta(days=1)


async def _default_name(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    row = (
        await session.execute(
            select(AccountHolder.first_name, AccountHolder.last_name).where(
                AccountHolder.user_id == user_id
            )
        )
    ).first()
    if row is None:
        return None
    return f"{row.first_name} {row.last_name}".upper()[:26].strip()


async def issue_card(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    request: CardIssueIn,
    settings: Settings,
    client: ClientInfo,
    now: dt.datetime,
) -> IssuedCard:
    vault = vault_for(settings)
    async with write_transaction(session):
        account = await accounts.get_owned(session, principal=principal, account_id=account_id)
        if account.status != AccountStatus.active.value:
            raise AccountNotActive(f"The account is {account.status}.")
        name = request.cardholder_name.upper() if request.cardholder_name else None
        name = name or await _default_name(session, principal.user_id)
        if not name:
            raise CardholderNameRequired()
        pan = ""
        for _attempt in range(PAN_ATTEMPTS):
            candidate = generate_pan(settings.card_bin)
            taken = await session.scalar(
                select(func.count())
                .select_from(Card)
                .where(Card.pan_digest.in_(vault.pan_digests(candidate)))
            )
            if not taken:
                pan = candidate
                break
        if not pan:  # pragma: no cover - 10^9 numbers per BIN
            raise RuntimeError("could not draw a free card number")
        cvv = generate_cvv()
        card_id = new_id()
        pan_key_id, pan_ciphertext = vault.encrypt_pan(pan, card_id=str(card_id))
        card = Card(
            id=card_id,
            account_id=account.id,
            owner_id=principal.user_id,
            type=request.type,
            status=CardStatus.active.value,
            frozen_by_admin=False,
            brand=BRAND,
            cardholder_name=name,
            last4=pan[-4:],
            exp_month=now.month,
            exp_year=now.year + VALID_YEARS,
            pan_key_id=pan_key_id,
            pan_ciphertext=pan_ciphertext,
            pan_digest=vault.pan_digest(pan),
            cvv_key_id=vault.current.key_id,
            cvv_digest=vault.cvv_digest(cvv, card_id=str(card_id)),
            created_at=now,
        )
        session.add(card)
        await session.flush()
        await audit.record(
            session,
            event_type="card.issued",
            actor_id=principal.user_id,
            target_type="card",
            target_id=card.id,
            client=client,
            details={"account_id": account.id, "type": request.type, "last4": card.last4},
        )
    return IssuedCard(card=card, currency=account.currency, pan=pan, cvv=cvv)


def _card_query() -> Any:
    return select(Card, Account.currency).join(Account, Account.id == Card.account_id)


async def list_cards(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageRequest,
    account_id: uuid.UUID | None,
    now: dt.datetime,
) -> tuple[list[CardView], str | None]:
    owned = select(Card.id).where(Card.owner_id == principal.user_id)
    await release_due_holds(session, now=now, where=CardAuthorization.card_id.in_(owned))
    after = page.after(cursor_time, cursor_uuid)
    statement = _card_query().where(Card.owner_id == principal.user_id)
    if account_id is not None:
        statement = statement.where(Card.account_id == account_id)
    rows = (
        await session.execute(
            statement.where(keyset_after((Card.created_at, Card.id), after, descending=True))
            .order_by(Card.created_at.desc(), Card.id.desc())
            .limit(page.limit + 1)
        )
    ).all()
    items, next_cursor = page.slice(rows, key=lambda row: (row[0].created_at, row[0].id))
    return [CardView(card, currency) for card, currency in items], next_cursor


async def _find_card(session: AsyncSession, card_id: uuid.UUID) -> CardView | None:
    row = (await session.execute(_card_query().where(Card.id == card_id))).first()
    return None if row is None else CardView(row[0], row[1])


async def get_card(
    session: AsyncSession, *, principal: Principal, card_id: uuid.UUID, now: dt.datetime
) -> CardView:
    view = await _find_card(session, card_id)
    if view is None or view.card.owner_id != principal.user_id:
        raise NotFound("No such card.")
    if await release_due_holds(session, now=now, where=CardAuthorization.card_id == card_id):
        view = await _find_card(session, card_id)
        assert view is not None
    return view


async def _locked_card(
    session: AsyncSession, *, card_id: uuid.UUID, owner_id: uuid.UUID | None
) -> Card:
    card = (
        await session.execute(select(Card).where(Card.id == card_id).with_for_update())
    ).scalar_one_or_none()
    if card is None or (owner_id is not None and card.owner_id != owner_id):
        raise NotFound("No such card.")
    return card


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


async def card_authorizations(
    session: AsyncSession,
    *,
    principal: Principal,
    card_id: uuid.UUID,
    status: AuthorizationStatus | None,
    page: PageRequest,
    now: dt.datetime,
) -> tuple[list[AuthorizationOut], str | None]:
    await get_card(session, principal=principal, card_id=card_id, now=now)
    after = page.after(cursor_time, cursor_uuid)
    statement = _authorization_query().where(
        AUTHORIZATION.c.card_id == card_id,
        keyset_after((AUTHORIZATION.c.created_at, AUTHORIZATION.c.id), after, descending=True),
    )
    if status is not None:
        statement = statement.where(AUTHORIZATION.c.status == status.value)
    rows = (
        await session.execute(
            statement.order_by(AUTHORIZATION.c.created_at.desc(), AUTHORIZATION.c.id.desc()).limit(
                page.limit + 1
            )
        )
    ).all()
    items, next_cursor = page.slice(rows, key=lambda row: (row.created_at, row.id))
    return [authorization_out(row) for row in items], next_cursor


# -- authorizations (the card network)


def _authorization_query() -> Any:
    return select(AUTHORIZATION, CARD.c.last4.label("card_last4")).join(
        CARD, CARD.c.id == AUTHORIZATION.c.card_id, isouter=True
    )


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


async def get_authorization(
    session: AsyncSession, *, authorization_id: uuid.UUID, now: dt.datetime
) -> AuthorizationOut:
    await release_due_holds(session, now=now, where=CardAuthorization.id == authorization_id)
    row = (
        await session.execute(_authorization_query().where(AUTHORIZATION.c.id == authorization_id))
    ).first()
    if row is None:
        raise NotFound("No such authorization.")
    return authorization_out(row)


# -- expiry


def _expire_sync(
    connection: Connection,
    *,
    now: dt.datetime,
    where: ColumnElement[bool],
    client: ClientInfo | None = None,
    limit: int = EXPIRE_BATCH,
) -> int:
    """Release the lapsed holds matching `where` (at most `limit`). Returns how many."""
    # Lock the authorizations before their accounts, as captures and voids do.
    rows = connection.execute(
        select(
            AUTHORIZATION.c.id,
            AUTHORIZATION.c.account_id,
            AUTHORIZATION.c.card_id,
            AUTHORIZATION.c.amount_minor,
            AUTHORIZATION.c.created_at,
        )
        .where(
            where,
            AUTHORIZATION.c.status == AuthorizationStatus.approved.value,
            AUTHORIZATION.c.expires_at <= now,
        )
        .order_by(AUTHORIZATION.c.id)
        .limit(limit)
        .with_for_update()
    ).all()
    today = now.date()
    per_account: dict[uuid.UUID, int] = {}
    placed_today: dict[uuid.UUID, int] = {}
    for row in rows:
        per_account[row.account_id] = per_account.get(row.account_id, 0) + row.amount_minor
        if row.created_at.date() == today:
            placed_today[row.account_id] = placed_today.get(row.account_id, 0) + row.amount_minor
    for account_id in sorted(per_account):
        holds.release_sync(
            connection,
            account_id,
            per_account[account_id],
            uncount_minor=placed_today.get(account_id, 0),
            today=today,
            now=now,
        )
    if rows:
        connection.execute(
            update(AUTHORIZATION)
            .where(AUTHORIZATION.c.id.in_([row.id for row in rows]))
            .values(status=AuthorizationStatus.expired.value, settled_at=now)
        )
    for row in rows:
        audit.record_sync(
            connection,
            event_type="card.hold_expired",
            target_type="card_authorization",
            target_id=row.id,
            client=client,
            occurred_at=now,
            details={"card_id": row.card_id, "released_minor": row.amount_minor},
        )
    return len(rows)


async def release_due_holds(
    session: AsyncSession, *, now: dt.datetime, where: ColumnElement[bool]
) -> int:
    """Lazy expiry before a read: one indexed read, and a write only when a hold lapsed."""
    due = await session.scalar(
        select(func.count())
        .select_from(CardAuthorization)
        .where(
            where,
            CardAuthorization.status == AuthorizationStatus.approved.value,
            CardAuthorization.expires_at <= now,
        )
    )
    if not due:
        return 0
    await session.rollback()
    released = await writer_for(database_of(session)).run(
        lambda connection: _expire_sync(connection, now=now, where=where)
    )
    session.expunge_all()
    return released


async def release_due_holds_on_account(
    session: AsyncSession, *, account_id: uuid.UUID, now: dt.datetime
) -> int:
    return await release_due_holds(
        session, now=now, where=CardAuthorization.account_id == account_id
    )


async def release_due_holds_of_owner(
    session: AsyncSession, *, owner_id: uuid.UUID, now: dt.datetime
) -> int:
    owned = select(Account.id).where(Account.owner_id == owner_id)
    return await release_due_holds(session, now=now, where=CardAuthorization.account_id.in_(owned))


async def expire_all_due(db: Database, *, now: dt.datetime) -> int:
    """`banking holds expire`: release every lapsed hold, in batches."""
    total = 0
    while True:
        released = await writer_for(db).run(
            lambda connection: _expire_sync(connection, now=now, where=true())
        )
        total += released
        if released < EXPIRE_BATCH:
            return total


# -- key rotation


def _rotate_batch_sync(connection: Connection, vault: Vault) -> int:
    rows = connection.execute(
        select(CARD.c.id, CARD.c.pan_key_id, CARD.c.pan_ciphertext)
        .where(CARD.c.pan_key_id != vault.current.key_id)
        .order_by(CARD.c.id)
        .limit(ROTATE_BATCH)
        .with_for_update()
    ).all()
    for row in rows:
        pan = vault.decrypt_pan(row.pan_key_id, row.pan_ciphertext, card_id=str(row.id))
        key_id, blob = vault.encrypt_pan(pan, card_id=str(row.id))
        connection.execute(
            update(CARD)
            .where(CARD.c.id == row.id)
            .values(pan_key_id=key_id, pan_ciphertext=blob, pan_digest=vault.pan_digest(pan))
        )
    return len(rows)


async def rotate_key(db: Database) -> RotationReport:
    """Re-encrypt every PAN under the current key and recompute its digest.

    CVV digests cannot be recomputed (the CVV is gone): they keep their key id, and the
    report says how many cards still need a retired key configured to verify CVVs.
    """
    vault = vault_for(db.settings)
    reencrypted = 0
    while True:
        try:
            done = await writer_for(db).run(lambda c: _rotate_batch_sync(c, vault))
        except IntegrityError as exc:  # pragma: no cover - digests of distinct PANs differ
            raise RuntimeError("a PAN digest collided during rotation") from exc
        reencrypted += done
        if done < ROTATE_BATCH:
            break

    def count(connection: Connection) -> tuple[int, int]:
        row = connection.execute(
            select(
                func.count(),
                func.count().filter(CARD.c.cvv_key_id != vault.current.key_id),
            ).select_from(CARD)
        ).one()
        return int(row[0]), int(row[1])

    cards, on_retired = await writer_for(db).read(count)
    return RotationReport(reencrypted=reencrypted, cards=cards, cvv_on_retired_keys=on_retired)


def network_key_matches(settings: Settings, given: str | None) -> bool:
    expected = settings.card_network_api_key
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
