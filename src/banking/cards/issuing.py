"""Issuing a card (number, CVV and expiry made here, shown once) and re-encrypting every
card's data under a new vault key (`banking cards rotate-key`)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import service as accounts
from banking.accounts.models import AccountStatus
from banking.audit import service as audit
from banking.cards.common import (
    BRAND,
    CARD,
    PAN_ATTEMPTS,
    ROTATE_BATCH,
    VALID_YEARS,
    AccountNotActive,
    CardholderNameRequired,
    IssuedCard,
    vault_for,
)
from banking.cards.models import (
    Card,
    CardStatus,
)
from banking.cards.reads import card_event_data
from banking.cards.schemas import (
    CardIssueIn,
    RotationReport,
)
from banking.cards.vault import Vault, generate_cvv, generate_pan
from banking.core.config import Settings
from banking.core.db import Database, new_id, write_transaction
from banking.core.deps import ClientInfo
from banking.events import outbox
from banking.holders.models import AccountHolder
from banking.identity.service import Principal
from banking.ledger.writer import writer_for


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
        await outbox.emit(
            session,
            type="card.issued",
            owner_id=card.owner_id,
            subject_type="card",
            subject_id=card.id,
            account_id=card.account_id,
            data=card_event_data(card),
            created_at=now,
        )
    return IssuedCard(card=card, currency=account.currency, pan=pan, cvv=cvv)


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
