"""Accounts: open, list, rename, close, look up a payee, read balances."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from banking.accounts import service as accounts
from banking.accounts.schemas import (
    AccountNumber,
    AccountOpenIn,
    AccountOut,
    AccountUpdateIn,
    BalanceOut,
    BalancesItem,
    BalancesOut,
    LookupOut,
    account_out,
)
from banking.cards import service as cards
from banking.core import reads
from banking.core.db import Database
from banking.core.deps import AppSettings, Client, DbSession, Now, now_of
from banking.core.ratelimit import rate_limit
from banking.core.schemas import Page
from banking.identity.deps import CurrentUser, TokenClaims
from banking.identity.service import Principal
from banking.ledger import history

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.get("/accounts/{account_id}/balance", response_model=BalanceOut)
async def get_balance(
    account_id: uuid.UUID,
    request: Request,
    claims: TokenClaims,
    verify: bool = False,
) -> Response:
    """Balance and available balance. With `?verify=true` the balance is also recomputed
    from the account's postings and `consistent` says whether all agree."""
    # The hottest read: no session, database or clock dependencies (each costs CPU on
    # every request); the session check and the read are one statement (one round trip),
    # which also says whether a card hold on the account has lapsed (released first).
    db: Database = request.app.state.db
    now = now_of(request)
    read = functools.partial(
        accounts.owned_balance_sync, claims=claims, account_id=account_id, now=now
    )
    view = await reads.run(db, read)
    if view.holds_due:
        async with db.sessionmaker() as session:
            await cards.release_due_holds_on_account(session, account_id=account_id, now=now)
        view = await reads.run(db, read)
    if not verify:
        out = BalanceOut(
            account_id=view.account_id,
            currency=view.currency,
            balance=view.balance_minor,
            available_balance=view.balance_minor - view.held_minor,
            held=view.held_minor,
        )
    else:
        async with db.sessionmaker() as session:
            check = await history.check_balance(session, account_id=view.account_id)
        out = BalanceOut(
            account_id=view.account_id,
            currency=view.currency,
            balance=check.balance_minor,
            available_balance=check.balance_minor - check.held_minor,
            held=check.held_minor,
            computed_balance=check.sum_minor,
            last_balance_after=check.last_balance_after_minor,
            consistent=check.consistent,
        )
    # Already validated: serialized once, straight to bytes.
    return Response(out.model_dump_json(), media_type="application/json")


@router.post("/accounts", status_code=201, response_model=AccountOut)
async def open_account(
    body: AccountOpenIn,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> AccountOut:
    """Open a checking or savings account in a supported currency (default USD)."""
    account = await accounts.open_account(session, principal=user, request=body, client=client)
    return account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)


@router.get("/accounts", response_model=Page[AccountOut])
async def list_accounts(
    user: CurrentUser, session: DbSession, settings: AppSettings, now: Now
) -> Page[AccountOut]:
    """Your accounts, oldest first."""
    await cards.release_due_holds_of_owner(session, owner_id=user.user_id, now=now)
    rows = await accounts.list_accounts(session, principal=user)
    limit = settings.daily_outgoing_limit_minor
    return Page[AccountOut](
        items=[account_out(row, default_daily_limit_minor=limit) for row in rows],
        next_cursor=None,
    )


@router.get("/accounts/lookup", response_model=LookupOut)
async def lookup_account(
    user: Annotated[Principal, rate_limit("lookup", per="user")],
    session: DbSession,
    number: Annotated[AccountNumber, Query(description="The payee's 12-digit account number.")],
) -> LookupOut:
    """Confirm a payee before a transfer: the masked holder name and the currency."""
    view = await accounts.lookup(session, number=number)
    return LookupOut(number=view.number, currency=view.currency, holder_name=view.holder_name)


@router.get("/balances", response_model=BalancesOut)
async def balances(request: Request, claims: TokenClaims) -> Response:
    """Every one of your accounts' balances, read together in one consistent snapshot."""
    # Like the single balance: the session check and the read are one statement; lapsed
    # card holds are released first, then the snapshot is read again.
    db: Database = request.app.state.db
    now = now_of(request)
    read = functools.partial(accounts.owned_balances_sync, claims=claims, now=now)
    view = await reads.run(db, read)
    if view.holds_due:
        async with db.sessionmaker() as session:
            await cards.release_due_holds_of_owner(
                session, owner_id=view.principal.user_id, now=now
            )
        view = await reads.run(db, read)
    out = BalancesOut(
        items=[
            BalancesItem(
                account_id=row.account_id,
                number=row.number,
                type=row.type,
                status=row.status,
                currency=row.currency,
                balance=row.balance_minor,
                available_balance=row.balance_minor - row.held_minor,
                held=row.held_minor,
            )
            for row in view.rows
        ],
        as_of=now,
    )
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/accounts/{account_id}", response_model=AccountOut)
async def get_account(
    account_id: uuid.UUID, user: CurrentUser, session: DbSession, settings: AppSettings, now: Now
) -> AccountOut:
    """One of your accounts."""
    # Ownership first: a stranger's request must not even release a lapsed hold.
    account = await accounts.get_owned(session, principal=user, account_id=account_id)
    if await cards.release_due_holds_on_account(session, account_id=account_id, now=now):
        account = await accounts.get_owned(session, principal=user, account_id=account_id)
    return account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)


@router.patch("/accounts/{account_id}", response_model=AccountOut)
async def update_account(
    account_id: uuid.UUID,
    body: AccountUpdateIn,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> AccountOut:
    """Change the account's nickname (the only field a member may change)."""
    account = await accounts.rename(
        session, principal=user, account_id=account_id, nickname=body.nickname, client=client
    )
    return account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)


@router.post("/accounts/{account_id}/close", response_model=AccountOut)
async def close_account(
    account_id: uuid.UUID,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> AccountOut:
    """Close the account for good. Only at a zero balance with no open card holds."""
    account = await accounts.close_account(
        session, principal=user, account_id=account_id, client=client
    )
    return account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)
