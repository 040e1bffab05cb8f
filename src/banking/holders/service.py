"""Account holders: the person behind a member's user.

Guarantees: a member reads and edits only their own profile; email and date of birth
are fixed after sign-up (email belongs to identity); every staff read of someone else's
profile leaves an audit row naming the reader.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit import service as audit
from banking.core import reads
from banking.core.db import Database, utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import NotFound
from banking.core.pagination import PageRequest, cursor_time, cursor_uuid, keyset_after
from banking.holders.models import AccountHolder
from banking.holders.schemas import HolderPatchIn
from banking.identity.models import User


@dataclass(frozen=True, slots=True)
class HolderView:
    holder: AccountHolder | Any
    email: str


async def find_for_user(session: AsyncSession, *, user_id: uuid.UUID) -> AccountHolder | None:
    return (
        await session.execute(select(AccountHolder).where(AccountHolder.user_id == user_id))
    ).scalar_one_or_none()


HOLDER = cast(Table, AccountHolder.__table__)
_USER = cast(Table, User.__table__)
_OWN = (
    select(*HOLDER.c, _USER.c.email)
    .select_from(HOLDER.join(_USER, _USER.c.id == HOLDER.c.user_id))
    .where(HOLDER.c.user_id == bindparam("user_id"))
)


def find_own_sync(connection: Connection, *, user_id: uuid.UUID) -> Any:
    """The user's profile with their email (a row with the `AccountHolder` attribute
    names and `email`), or None."""
    return reads.first(connection, _OWN, {"user_id": user_id})


def get_own_sync(connection: Connection, *, user_id: uuid.UUID) -> HolderView:
    row = find_own_sync(connection, user_id=user_id)
    if row is None:
        raise NotFound("You have no account-holder profile.")
    return HolderView(row, row.email)


async def get_own(session: AsyncSession, *, user_id: uuid.UUID) -> HolderView:
    row = (
        await session.execute(
            select(AccountHolder, User.email)
            .join(User, User.id == AccountHolder.user_id)
            .where(AccountHolder.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("You have no account-holder profile.")
    return HolderView(row[0], row[1])


async def update_own(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    request: HolderPatchIn,
    client: ClientInfo,
) -> HolderView:
    values: dict[str, object] = {}
    fields = request.model_fields_set
    for name in ("first_name", "last_name", "phone"):
        if name in fields:
            values[name] = getattr(request, name)
    if "address" in fields:
        address = request.address
        values.update(
            address_line1=address.line1 if address else None,
            address_line2=address.line2 if address else None,
            city=address.city if address else None,
            postal_code=address.postal_code if address else None,
            country=address.country if address else None,
        )
    async with write_transaction(session):
        holder = await find_for_user(session, user_id=user_id)
        if holder is None:
            raise NotFound("You have no account-holder profile.")
        if values:
            values["updated_at"] = utcnow()
            await session.execute(
                update(AccountHolder).where(AccountHolder.id == holder.id).values(**values)
            )
            await audit.record(
                session,
                event_type="holder.updated",
                actor_id=user_id,
                target_type="account_holder",
                target_id=holder.id,
                client=client,
                # Which fields changed, never their values (personal data stays out of logs).
                details={"fields": sorted(fields)},
            )
    # Read back after the commit so the answer is what is stored.
    return await get_own(session, user_id=user_id)


def list_holders_sync(
    connection: Connection,
    *,
    page: PageRequest,
    email: str | None,
    name: str | None,
    user_id: uuid.UUID | None = None,
) -> tuple[list[HolderView], str | None]:
    """Profiles across the bank, newest first (staff only; the route records the read)."""
    after = page.after(cursor_time, cursor_uuid)
    statement = select(*HOLDER.c, _USER.c.email).select_from(
        HOLDER.join(_USER, _USER.c.id == HOLDER.c.user_id)
    )
    if email:
        statement = statement.where(_USER.c.email == email.strip().lower())
    if user_id is not None:
        statement = statement.where(HOLDER.c.user_id == user_id)
    # "grace hop" finds Grace Hopper: every word is part of the first or the last name.
    for needle in (name or "").lower().split():
        statement = statement.where(
            or_(
                func.lower(HOLDER.c.first_name).contains(needle, autoescape=True),
                func.lower(HOLDER.c.last_name).contains(needle, autoescape=True),
            )
        )
    statement = (
        statement.where(keyset_after((HOLDER.c.created_at, HOLDER.c.id), after, descending=True))
        .order_by(HOLDER.c.created_at.desc(), HOLDER.c.id.desc())
        .limit(page.limit + 1)
    )
    views = [HolderView(row, row.email) for row in connection.execute(statement)]
    return page.slice(views, key=lambda v: (v.holder.created_at, v.holder.id))


_BY_ID = (
    select(*HOLDER.c, _USER.c.email)
    .select_from(HOLDER.join(_USER, _USER.c.id == HOLDER.c.user_id))
    .where(HOLDER.c.id == bindparam("holder_id"))
)


def get_holder_sync(connection: Connection, *, holder_id: uuid.UUID) -> HolderView:
    row = reads.first(connection, _BY_ID, {"holder_id": holder_id})
    if row is None:
        raise NotFound()
    return HolderView(row, row.email)


async def record_staff_read(
    db: Database,
    *,
    staff_id: uuid.UUID,
    client: ClientInfo,
    details: dict[str, Any],
    target_id: uuid.UUID | None = None,
) -> None:
    """Every staff read of someone else's profile leaves an audit row naming the reader:
    the one write of such a read, in a transaction of its own."""
    async with db.sessionmaker() as session:
        await audit.record_alone(
            session,
            event_type="staff.read",
            actor_id=staff_id,
            target_type="account_holder",
            target_id=target_id,
            client=client,
            details=details,
        )
