"""The bank's internal settlement accounts: fixed ids, known without a database read.

Each (purpose, currency) pair has one account whose id is a UUIDv5 of the pair, so the
ledger knows an id is internal without reading it, and never locks or caches it.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from banking.accounts.models import Account, AccountStatus, AccountType
from banking.core.currencies import SUPPORTED_CURRENCIES
from banking.core.db import utcnow

_NAMESPACE = uuid.UUID("5b0f3f2e-8d7a-4c1e-9a57-0c2b6d4e8f11")


class Purpose(StrEnum):
    cash = "cash"
    """Money entering or leaving the bank as deposits and withdrawals."""
    card_network = "card_network"
    """Amounts owed to the card network for captured card payments."""
    interest_expense = "interest_expense"
    """The interest the bank pays on savings: each monthly interest entry debits it."""


def internal_account_id(purpose: Purpose, currency: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{purpose.value}:{currency}")


INTERNAL_ACCOUNTS: dict[uuid.UUID, tuple[Purpose, str]] = {
    internal_account_id(purpose, currency): (purpose, currency)
    for purpose in Purpose
    for currency in SUPPORTED_CURRENCIES
}


def is_internal(account_id: uuid.UUID) -> bool:
    return account_id in INTERNAL_ACCOUNTS


def ensure_internal_accounts(connection: Connection) -> int:
    """Create any missing internal account (safe to run concurrently). Returns how many."""
    table = cast(Table, Account.__table__)
    existing = set(
        connection.execute(select(table.c.id).where(table.c.is_internal.is_(True))).scalars()
    )
    missing = [
        {
            "id": account_id,
            "number": None,
            "owner_id": None,
            "is_internal": True,
            "purpose": purpose.value,
            "type": AccountType.internal.value,
            "currency": currency,
            "status": AccountStatus.active.value,
            "balance_minor": 0,
            "held_minor": 0,
            "outgoing_minor": 0,
            "created_at": utcnow(),
        }
        for account_id, (purpose, currency) in INTERNAL_ACCOUNTS.items()
        if account_id not in existing
    ]
    if not missing:
        return 0
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(insert(table).values(missing).on_conflict_do_nothing())
    return len(missing)
