"""An account as the ledger sees it: what is held and available at an instant, and closing.

Both depend on the ledger's rule for lapsed card holds (ledger/lapsed.py):

- The account reads (a member's account or accounts, any account for staff, and the
  columns the admin list selects) compute what is held as of the read's time: a card hold
  whose `expires_at` has passed counts as released whether or not the write path has
  released it yet. Reads never write.
- Closing an account releases its lapsed holds first, then closes it only at a zero balance
  with nothing held, under the account's lock so no movement can slip in between; audited,
  with an `account.closed` event.

The account's own records (opening, naming, freezing, limits, its errors and events) stay
in `banking.accounts`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import service as accounts
from banking.accounts.models import Account, AccountStatus
from banking.audit import service as audit
from banking.core import reads
from banking.core.db import UTCDateTime, database_of, utcnow
from banking.core.deps import ClientInfo
from banking.core.errors import NotFound
from banking.identity.service import Principal
from banking.ledger import lapsed
from banking.ledger.writer import writer_for

ACCOUNT = accounts.ACCOUNT


# Reads (the shared read path, identity/deps.py `Read`): Core statements on the read
# connection. What is held is computed as of the read's time: lapsed card holds count as
# released whether or not the write path has released them yet (ledger/lapsed.py).
_NOW = bindparam("now", type_=UTCDateTime())
HELD_NOW = (ACCOUNT.c.held_minor - lapsed.lapsed_minor(ACCOUNT.c.id, _NOW)).label("held_minor")
ACCOUNT_COLUMNS = (
    ACCOUNT.c.id,
    ACCOUNT.c.number,
    ACCOUNT.c.type,
    ACCOUNT.c.currency,
    ACCOUNT.c.status,
    ACCOUNT.c.nickname,
    ACCOUNT.c.balance_minor,
    HELD_NOW,
    ACCOUNT.c.daily_outgoing_limit_minor,
    ACCOUNT.c.created_at,
    ACCOUNT.c.closed_at,
    ACCOUNT.c.owner_id,
)
_CUSTOMER = ACCOUNT.c.is_internal.is_(False)
_OWNED_ACCOUNT = select(*ACCOUNT_COLUMNS).where(
    ACCOUNT.c.id == bindparam("account_id"), ACCOUNT.c.owner_id == bindparam("owner_id"), _CUSTOMER
)
_ANY_ACCOUNT = select(*ACCOUNT_COLUMNS).where(ACCOUNT.c.id == bindparam("account_id"), _CUSTOMER)
_OWNED_ACCOUNTS = (
    select(*ACCOUNT_COLUMNS)
    .where(ACCOUNT.c.owner_id == bindparam("owner_id"), _CUSTOMER)
    .order_by(ACCOUNT.c.created_at, ACCOUNT.c.id)
)


def owned_account_sync(
    connection: Connection, principal: Principal, *, account_id: uuid.UUID, now: dt.datetime
) -> Any:
    """The caller's account as of `now` (a row with the `Account` attribute names); 404
    for anyone else's, so ids cannot be probed."""
    row = reads.first(
        connection,
        _OWNED_ACCOUNT,
        {"account_id": account_id, "owner_id": principal.user_id, "now": now},
    )
    if row is None:
        raise NotFound("No such account.")
    return row


def any_account_sync(connection: Connection, *, account_id: uuid.UUID, now: dt.datetime) -> Any:
    """Any customer account as of `now` (staff views)."""
    row = reads.first(connection, _ANY_ACCOUNT, {"account_id": account_id, "now": now})
    if row is None:
        raise NotFound("No such account.")
    return row


def owned_accounts_sync(
    connection: Connection, principal: Principal, *, now: dt.datetime
) -> list[Any]:
    """Every account of the caller as of `now`, oldest first, in one statement (one
    snapshot)."""
    return reads.rows(connection, _OWNED_ACCOUNTS, {"owner_id": principal.user_id, "now": now})


def _close_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    actor_id: uuid.UUID,
    client: ClientInfo,
) -> None:
    row = connection.execute(
        select(ACCOUNT.c.status, ACCOUNT.c.balance_minor, ACCOUNT.c.held_minor)
        .where(ACCOUNT.c.id == account_id)
        .with_for_update()
    ).one()
    if row.status == AccountStatus.closed.value:
        raise accounts.AccountAlreadyClosed()
    now = utcnow()
    held_minor = row.held_minor
    if held_minor:
        # Lapsed card holds are released first: they hold nothing any more.
        lapsed.release_on_accounts_sync(connection, [account_id], now=now)
        held_minor = connection.execute(
            select(ACCOUNT.c.held_minor).where(ACCOUNT.c.id == account_id)
        ).scalar_one()
    if row.balance_minor != 0 or held_minor != 0:
        raise accounts.AccountNotEmpty()
    connection.execute(
        update(ACCOUNT)
        .where(ACCOUNT.c.id == account_id)
        .values(status=AccountStatus.closed.value, closed_at=now)
    )
    audit.record_sync(
        connection,
        event_type="account.closed",
        actor_id=actor_id,
        target_type="account",
        target_id=account_id,
        client=client,
        occurred_at=now,
    )
    accounts.account_event_sync(connection, "account.closed", account_id)


async def close_account(
    session: AsyncSession, *, principal: Principal, account_id: uuid.UUID, client: ClientInfo
) -> Account:
    """Close the caller's account for good: only at a zero balance with no open holds
    (lapsed card holds are released first), decided under the account's lock."""
    await accounts.get_owned(session, principal=principal, account_id=account_id)
    await session.rollback()
    await writer_for(database_of(session)).run(
        lambda connection: _close_sync(
            connection, account_id=account_id, actor_id=principal.user_id, client=client
        )
    )
    return await accounts.get_owned(session, principal=principal, account_id=account_id)
