"""Account holders: the person behind a member's user.

Guarantees: a member reads and edits only their own profile; email and date of birth
are fixed after sign-up (email belongs to identity); every staff read of someone else's
profile leaves an audit row naming the reader.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from banking.audit import service as audit
from banking.core.db import utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import NotFound
from banking.core.pagination import PageRequest, cursor_time, cursor_uuid, keyset_after
from banking.holders.models import AccountHolder
from banking.holders.schemas import HolderPatchIn
from banking.identity.models import User


@dataclass(frozen=True, slots=True)
class HolderView:
    holder: AccountHolder
    email: str


async def find_for_user(session: AsyncSession, *, user_id: uuid.UUID) -> AccountHolder | None:
    return (
        await session.execute(select(AccountHolder).where(AccountHolder.user_id == user_id))
    ).scalar_one_or_none()


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


async def list_holders(
    session: AsyncSession,
    *,
    page: PageRequest,
    email: str | None,
    name: str | None,
    staff_id: uuid.UUID,
    client: ClientInfo,
) -> tuple[list[HolderView], str | None]:
    """Profiles across the bank, newest first (staff only; the read is audited)."""
    after = page.after(cursor_time, cursor_uuid)
    statement = select(AccountHolder, User.email).join(User, User.id == AccountHolder.user_id)
    if email:
        statement = statement.where(User.email == email.strip().lower())
    if name:
        needle = name.strip().lower()
        statement = statement.where(
            or_(
                func.lower(AccountHolder.first_name).contains(needle, autoescape=True),
                func.lower(AccountHolder.last_name).contains(needle, autoescape=True),
            )
        )
    statement = (
        statement.where(
            keyset_after((AccountHolder.created_at, AccountHolder.id), after, descending=True)
        )
        .order_by(AccountHolder.created_at.desc(), AccountHolder.id.desc())
        .limit(page.limit + 1)
    )
    rows = (await session.execute(statement)).all()
    views = [HolderView(row[0], row[1]) for row in rows]
    items, next_cursor = page.slice(views, key=lambda v: (v.holder.created_at, v.holder.id))
    await audit.record_alone(
        session,
        event_type="staff.read",
        actor_id=staff_id,
        target_type="account_holder",
        client=client,
        details={
            "view": "list",
            "filters": {"email": bool(email), "name": bool(name)},
            "ids": [str(view.holder.id) for view in items],
        },
    )
    return items, next_cursor


async def get_for_staff(
    session: AsyncSession, *, holder_id: uuid.UUID, staff_id: uuid.UUID, client: ClientInfo
) -> HolderView:
    row = (
        await session.execute(
            select(AccountHolder, User.email)
            .join(User, User.id == AccountHolder.user_id)
            .where(AccountHolder.id == holder_id)
        )
    ).first()
    if row is None:
        raise NotFound()
    view = HolderView(row[0], row[1])
    if view.holder.user_id != staff_id:
        await audit.record_alone(
            session,
            event_type="staff.read",
            actor_id=staff_id,
            target_type="account_holder",
            target_id=holder_id,
            client=client,
            details={"view": "detail", "user_id": str(view.holder.user_id)},
        )
    return view
