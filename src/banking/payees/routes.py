"""Payees: saved beneficiaries, and their use in transfers (`payee_id`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.core.deps import AppSettings, Client, DbSession, Now
from banking.core.ratelimit import rate_limit
from banking.identity.deps import CurrentUser, MemberRead
from banking.identity.service import Principal
from banking.payees import service as payees
from banking.payees.schemas import PayeeIn, PayeeOut, PayeePage, PayeeUpdateIn

router = APIRouter(prefix="/v1", tags=["payees"])


@router.post("/payees", status_code=201, response_model=PayeeOut)
async def add_payee(
    body: PayeeIn,
    # Adding a payee looks an account number up: limited like the lookup route.
    user: Annotated[Principal, rate_limit("lookup", per="user")],
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
) -> PayeeOut:
    """Save an account of the bank as a payee: the number must exist and be open; the
    answer shows the holder's name masked. For `NEW_PAYEE_COOLDOWN_S` after this, transfers
    to the payee above `NEW_PAYEE_LIMIT_MINOR` are declined with `new_payee_limit`."""
    payee = await payees.add_payee(session, principal=user, request=body, client=client, now=now)
    return payees.payee_out(payee, settings=settings, now=now)


@router.get("/payees", response_model=PayeePage)
async def list_payees(read: MemberRead) -> Response:
    """Your payees, by name."""
    settings, now = read.settings, read.now

    def listing(connection: Connection, principal: Principal) -> PayeePage:
        rows = payees.list_payees_sync(connection, principal=principal)
        return PayeePage(items=[payees.payee_out(row, settings=settings, now=now) for row in rows])

    return await read.json(listing)


@router.get("/payees/{payee_id}", response_model=PayeeOut)
async def get_payee(payee_id: uuid.UUID, read: MemberRead) -> Response:
    """One of your payees."""
    settings, now = read.settings, read.now

    def detail(connection: Connection, principal: Principal) -> PayeeOut:
        payee = payees.get_payee_sync(connection, principal=principal, payee_id=payee_id)
        return payees.payee_out(payee, settings=settings, now=now)

    return await read.json(detail)


@router.patch("/payees/{payee_id}", response_model=PayeeOut)
async def update_payee(
    payee_id: uuid.UUID,
    body: PayeeUpdateIn,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
    now: Now,
) -> PayeeOut:
    """Rename a payee or change its nickname (the account number cannot change)."""
    payee = await payees.update_payee(
        session, principal=user, payee_id=payee_id, request=body, client=client
    )
    return payees.payee_out(payee, settings=settings, now=now)


@router.delete("/payees/{payee_id}", status_code=204)
async def delete_payee(
    payee_id: uuid.UUID, user: CurrentUser, session: DbSession, client: Client
) -> None:
    """Remove a payee. Scheduled transfers made to it keep their target account."""
    await payees.delete_payee(session, principal=user, payee_id=payee_id, client=client)
