from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.core.deps import Client, DbSession
from banking.core.pagination import Pagination
from banking.holders import service as holders
from banking.holders.schemas import HolderOut, HolderPage, HolderPatchIn
from banking.identity.deps import CurrentUser, MemberRead, StaffRead
from banking.identity.service import Principal

router = APIRouter(tags=["account holders"])


@router.get("/v1/account-holders/me", response_model=HolderOut)
async def get_my_profile(read: MemberRead) -> Response:
    """Your account-holder profile."""

    def profile(connection: Connection, principal: Principal) -> HolderOut:
        view = holders.get_own_sync(connection, user_id=principal.user_id)
        return HolderOut.of(view.holder, email=view.email)

    return await read.json(profile)


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
    read: StaffRead,
    client: Client,
    page: Pagination,
    email: Annotated[
        str | None, Query(max_length=254, description="Exact email (case-insensitive).")
    ] = None,
    name: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Words each found in the first or last name (case-insensitive): "
            "`grace hop` finds Grace Hopper.",
        ),
    ] = None,
    user_id: Annotated[
        uuid.UUID | None, Query(description="The holder of this user (an account's `owner_id`).")
    ] = None,
) -> Response:
    """Account holders across the bank, newest first (support and admin). Audited."""

    def listing(connection: Connection, principal: Principal) -> tuple[Principal, HolderPage]:
        items, next_cursor = holders.list_holders_sync(
            connection, page=page, email=email, name=name, user_id=user_id
        )
        out = HolderPage(
            items=[HolderOut.of(view.holder, email=view.email) for view in items],
            next_cursor=next_cursor,
        )
        return principal, out

    staff, out = await read.run(listing)
    await holders.record_staff_read(
        read.db,
        staff_id=staff.user_id,
        client=client,
        details={
            "view": "list",
            "filters": {"email": bool(email), "name": bool(name), "user": bool(user_id)},
            "ids": [str(item.id) for item in out.items],
        },
    )
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/v1/admin/account-holders/{holder_id}", response_model=HolderOut)
async def get_account_holder(holder_id: uuid.UUID, read: StaffRead, client: Client) -> Response:
    """One account holder (support and admin). Audited."""

    def detail(connection: Connection, principal: Principal) -> tuple[Principal, HolderOut]:
        view = holders.get_holder_sync(connection, holder_id=holder_id)
        return principal, HolderOut.of(view.holder, email=view.email)

    staff, out = await read.run(detail)
    if out.user_id != staff.user_id:
        await holders.record_staff_read(
            read.db,
            staff_id=staff.user_id,
            client=client,
            target_id=holder_id,
            details={"view": "detail", "user_id": str(out.user_id)},
        )
    return Response(out.model_dump_json(), media_type="application/json")
