"""Holds that lapsed (older than CARD_HOLD_DAYS): released by the write path only, through
`banking.ledger.lapsed`, with their events; the sweeper and `banking holds expire` call
`expire_all_due`. Reads show a lapsed hold as expired and never write."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Connection

from banking.cards.common import EXPIRE_BATCH
from banking.core.db import Database
from banking.core.deps import ClientInfo
from banking.ledger import lapsed


def _expire_sync(
    connection: Connection,
    *,
    now: dt.datetime,
    where: ColumnElement[bool],
    client: ClientInfo | None = None,
    limit: int = EXPIRE_BATCH,
) -> int:
    """Release the lapsed holds matching `where` (at most `limit`). Returns how many."""
    return lapsed.release_sync(connection, now=now, where=where, client=client, limit=limit)


async def expire_all_due(db: Database, *, now: dt.datetime) -> int:
    """`banking holds expire`: release every lapsed hold, in batches (the sweeper's work,
    once; see ledger/sweeper.py)."""
    from banking.ledger import sweeper

    return await sweeper.sweep(db, now=now, lead=False)


# -- key rotation
