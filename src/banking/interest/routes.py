"""Savings interest rates: members read their savings account's rate, admins set it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict

from fastapi import APIRouter
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.core.deps import Client, DbSession
from banking.identity.deps import AdminUser, MemberRead, Read, StaffRead
from banking.identity.service import Principal
from banking.interest import service as interest
from banking.interest.schemas import RateChangeOut, RateIn, RateOut

router = APIRouter(prefix="/v1", tags=["interest"])


def _rates(
    read: Read, account_id: uuid.UUID, *, staff: bool
) -> Callable[[Connection, Principal], RateOut]:
    settings, now = read.settings, read.now

    def rates(connection: Connection, principal: Principal) -> RateOut:
        return _out(
            interest.get_rates_sync(
                connection,
                principal=principal,
                account_id=account_id,
                staff=staff,
                settings=settings,
                now=now,
            )
        )

    return rates


def _out(view: interest.RateView) -> RateOut:
    return RateOut(
        account_id=view.account_id,
        rate_bps=view.rate_bps,
        default_rate_bps=view.default_rate_bps,
        history=[RateChangeOut(**asdict(change)) for change in view.history],
    )


@router.get("/accounts/{account_id}/interest-rate", response_model=RateOut)
async def get_rate(account_id: uuid.UUID, read: MemberRead) -> Response:
    """Your savings account's nominal annual rate and its history. Interest accrues daily
    on the end-of-day balance (actual/365) and is paid monthly (see docs/interest.md)."""
    return await read.json(_rates(read, account_id, staff=False))


@router.get("/admin/accounts/{account_id}/interest-rate", response_model=RateOut)
async def admin_get_rate(account_id: uuid.UUID, read: StaffRead) -> Response:
    """Any savings account's rate and its history (support and admin)."""
    return await read.json(_rates(read, account_id, staff=True))


@router.put("/admin/accounts/{account_id}/interest-rate", response_model=RateOut)
async def set_rate(
    account_id: uuid.UUID, body: RateIn, staff: AdminUser, session: DbSession, client: Client
) -> RateOut:
    """Set a savings account's rate from `effective_on` (today when omitted; never a past
    day: 422 `rate_in_past`) (admin). The change is added to the history, never edited;
    422 `not_savings` for another account type."""
    return _out(
        await interest.set_rate(
            session,
            principal=staff,
            account_id=account_id,
            rate_bps=body.rate_bps,
            effective_on=body.effective_on,
            reason=body.reason,
            client=client,
        )
    )
