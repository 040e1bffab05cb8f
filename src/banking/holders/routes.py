from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from banking.core.deps import Client, DbSession
from banking.core.pagination import Pagination
from banking.holders import service as holders
from banking.holders.schemas import HolderOut, HolderPage, HolderPatchIn
from banking.identity.deps import CurrentUser, StaffUser

router = APIRouter(tags=["account holders"])


@router.get("/v1/account-holders/me", response_model=HolderOut)
async def get_my_profile(principal: CurrentUser, session: DbSession) -> HolderOut:
    """Your account-holder profile."""
    view = await holders.get_own(session, user_id=principal.user_id)
    return HolderOut.of(view.holder, email=view.email)


@router.patch("/v1/account-holders/me", response_model=HolderOut)
async def update_my_profile(
    body: HolderPatchIn, principal: CurrentUser, session: DbSession, client: Client
) -> HolderOut:
    """Change your name, phone or address. Only the fields sent change; `phone: null` and
    `address: null` clear them. Email, date of birth, role and ids cannot be changed here:
    sending them is a 422."""
    view = await holders.update_own(session, user_id=principal.user_id, request=body, client=client)
    return HolderOut.of(view.holder, email=view.email)


@router.get("/v1/admin/account-holders", response_model=HolderPage)
async def list_account_holders(
    principal: StaffUser,
    session: DbSession,
    client: Client,
    page: Pagination,
    email: Annotated[
        str | None, Query(max_length=254, description="Exact email (case-insensitive).")
    ] = None,
    name: Annotated[
        str | None,
        Query(max_length=100, description="Part of the first or last name (case-insensitive)."),
    ] = None,
) -> HolderPage:
    """Account holders across the bank, newest first (support and admin). Audited."""
    items, next_cursor = await holders.list_holders(
        session, page=page, email=email, name=name, staff_id=principal.user_id, client=client
    )
    return HolderPage(
        items=[HolderOut.of(view.holder, email=view.email) for view in items],
        next_cursor=next_cursor,
    )


@router.get("/v1/admin/account-holders/{holder_id}", response_model=HolderOut)
async def get_account_holder(
    holder_id: uuid.UUID, principal: StaffUser, session: DbSession, client: Client
) -> HolderOut:
    """One account holder (support and admin). Audited."""
    view = await holders.get_for_staff(
        session, holder_id=holder_id, staff_id=principal.user_id, client=client
    )
    return HolderOut.of(view.holder, email=view.email)
