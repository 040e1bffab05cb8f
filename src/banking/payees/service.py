"""Payees: a member's saved beneficiaries.

Guarantees: a member sees and names only their own payees (anything else is 404); a payee
names an open customer account of the bank, found by its number (check digit validated by
the schema), shown with the holder's name masked as the lookup route shows it; one payee
per account per member (409 `payee_exists`); adding, renaming and deleting are audited
(`payee.added`, `payee.updated`, `payee.deleted`). A transfer to a payee added less than
`NEW_PAYEE_COOLDOWN_S` ago above `NEW_PAYEE_LIMIT_MINOR` is declined and recorded with
`new_payee_limit` (both settings at 0 turn the control off); checked by
tests/integration/test_payees.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import service as accounts
from banking.audit import service as audit
from banking.core import reads
from banking.core.config import Settings
from banking.core.db import utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import Conflict, NotFound
from banking.identity.service import Principal
from banking.ledger import service as ledger
from banking.payees.models import Payee
from banking.payees.schemas import PayeeIn, PayeeOut, PayeeUpdateIn

PAYEE = cast(Table, Payee.__table__)


class PayeeExists(Conflict):
    code = "payee_exists"
    title = "You already have a payee for this account."


def cooldown_ends_at(settings: Settings, created_at: dt.datetime) -> dt.datetime | None:
    if settings.new_payee_cooldown_s <= 0 or settings.new_payee_limit_minor <= 0:
        return None
    return created_at + dt.timedelta(seconds=settings.new_payee_cooldown_s)


def payee_out(payee: Any, *, settings: Settings, now: dt.datetime) -> PayeeOut:
    ends = cooldown_ends_at(settings, payee.created_at)
    return PayeeOut(
        id=payee.id,
        name=payee.name,
        nickname=payee.nickname,
        account_number=payee.account_number,
        currency=payee.currency,
        holder_name=payee.holder_name,
        created_at=payee.created_at,
        cooldown_ends_at=ends if ends is not None and ends > now else None,
    )


async def add_payee(
    session: AsyncSession,
    *,
    principal: Principal,
    request: PayeeIn,
    client: ClientInfo,
    now: dt.datetime,
) -> Payee:
    connection = await session.connection()
    view = await connection.run_sync(
        lambda sync: accounts.lookup_sync(sync, number=request.account_number)
    )
    account = await accounts.find_by_number(session, request.account_number)
    if account is None:  # pragma: no cover - the lookup found it a moment ago
        raise NotFound("No open account has this number.")
    payee = Payee(
        owner_id=principal.user_id,
        name=request.name,
        nickname=request.nickname,
        account_id=account.id,
        account_number=view.number,
        currency=view.currency,
        holder_name=view.holder_name,
        created_at=now,
    )
    try:
        async with write_transaction(session):
            session.add(payee)
            await session.flush()
            await audit.record(
                session,
                event_type="payee.added",
                actor_id=principal.user_id,
                target_type="payee",
                target_id=payee.id,
                client=client,
                occurred_at=now,
                details={"account_id": account.id, "currency": view.currency},
            )
    except IntegrityError:
        raise PayeeExists() from None
    return payee


_OWN_PAYEES = (
    select(*PAYEE.c)
    .where(PAYEE.c.owner_id == bindparam("owner_id"))
    .order_by(PAYEE.c.name, PAYEE.c.created_at, PAYEE.c.id)
)
_OWN_PAYEE = select(*PAYEE.c).where(
    PAYEE.c.id == bindparam("payee_id"), PAYEE.c.owner_id == bindparam("owner_id")
)


def list_payees_sync(connection: Connection, *, principal: Principal) -> list[Any]:
    """The caller's payees by name (rows with the `Payee` attribute names)."""
    return reads.rows(connection, _OWN_PAYEES, {"owner_id": principal.user_id})


def get_payee_sync(connection: Connection, *, principal: Principal, payee_id: uuid.UUID) -> Any:
    """The caller's payee (a row with the `Payee` attribute names); 404 for anyone else's."""
    row = reads.first(connection, _OWN_PAYEE, {"payee_id": payee_id, "owner_id": principal.user_id})
    if row is None:
        raise NotFound("No such payee.")
    return row


async def get_payee(session: AsyncSession, *, principal: Principal, payee_id: uuid.UUID) -> Payee:
    payee = await session.get(Payee, payee_id)
    if payee is None or payee.owner_id != principal.user_id:
        raise NotFound("No such payee.")
    return payee


async def update_payee(
    session: AsyncSession,
    *,
    principal: Principal,
    payee_id: uuid.UUID,
    request: PayeeUpdateIn,
    client: ClientInfo,
) -> Payee:
    async with write_transaction(session):
        payee = await get_payee(session, principal=principal, payee_id=payee_id)
        changed = sorted(request.model_fields_set)
        if "name" in changed and request.name is not None:
            payee.name = request.name
        if "nickname" in changed:
            payee.nickname = request.nickname
        await audit.record(
            session,
            event_type="payee.updated",
            actor_id=principal.user_id,
            target_type="payee",
            target_id=payee.id,
            client=client,
            details={"fields": changed},
        )
    return payee


async def delete_payee(
    session: AsyncSession, *, principal: Principal, payee_id: uuid.UUID, client: ClientInfo
) -> None:
    async with write_transaction(session):
        payee = await get_payee(session, principal=principal, payee_id=payee_id)
        await session.execute(delete(Payee).where(Payee.id == payee.id))
        await audit.record(
            session,
            event_type="payee.deleted",
            actor_id=principal.user_id,
            target_type="payee",
            target_id=payee_id,
            client=client,
        )


@dataclass(frozen=True, slots=True)
class PayeeRef:
    id: uuid.UUID
    account_number: str
    created_at: dt.datetime


_FIND_FOR_TRANSFER = select(PAYEE.c.id, PAYEE.c.account_number, PAYEE.c.created_at)


def get_for_transfer_sync(
    connection: Connection, *, owner_id: uuid.UUID, payee_id: uuid.UUID
) -> PayeeRef:
    """The caller's payee, read on the ledger's connection (a transfer's `resolve`)."""
    row = connection.execute(
        _FIND_FOR_TRANSFER.where(PAYEE.c.id == payee_id, PAYEE.c.owner_id == owner_id)
    ).first()
    if row is None:
        raise NotFound("No such payee.")
    return PayeeRef(row[0], row[1], row[2])


def numbers_of_sync(
    connection: Connection, *, owner_id: uuid.UUID, payee_ids: list[uuid.UUID]
) -> list[str]:
    """The account numbers of the caller's payees among `payee_ids` (others are ignored)."""
    if not payee_ids:
        return []
    rows = connection.execute(
        select(PAYEE.c.account_number).where(
            PAYEE.c.owner_id == owner_id, PAYEE.c.id.in_(sorted(set(payee_ids)))
        )
    ).scalars()
    return list(rows)


def new_payee_decline(
    settings: Settings, payee: PayeeRef, *, amount_minor: int, now: dt.datetime | None = None
) -> ledger.Declined | None:
    """The fraud control on new payees: None when the transfer may go ahead."""
    ends = cooldown_ends_at(settings, payee.created_at)
    if ends is None or (now or utcnow()) >= ends:
        return None
    if amount_minor <= settings.new_payee_limit_minor:
        return None
    return ledger.NewPayeeLimit(
        f"Until {ends.isoformat()} transfers to this payee may be at most "
        f"{settings.new_payee_limit_minor} minor units."
    )
