from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

from banking.accounts import numbers
from banking.accounts.models import Account
from banking.core.currencies import DEFAULT_CURRENCY, SUPPORTED_CURRENCIES
from banking.core.schemas import NoControl, OutSchema, Schema

Nickname = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=60),
    NoControl,
]


def _supported_currency(value: str) -> str:
    if value not in SUPPORTED_CURRENCIES:
        raise ValueError(f"must be one of {', '.join(SUPPORTED_CURRENCIES)}")
    return value


Currency = Annotated[
    str,
    StringConstraints(strict=True, min_length=3, max_length=3, pattern=r"^[A-Z]{3}$"),
    AfterValidator(_supported_currency),
    Field(json_schema_extra={"enum": list(SUPPORTED_CURRENCIES)}),
]


def _valid_number(value: str) -> str:
    if not numbers.is_valid(value):
        raise ValueError("must be 12 digits with a valid check digit")
    return value


# JSON Schema cannot state the check digit; the pattern states everything else.
AccountNumber = Annotated[
    str,
    StringConstraints(strict=True, max_length=12),
    AfterValidator(_valid_number),
    Field(
        json_schema_extra={"pattern": "^[0-9]{12}$", "minLength": 12},
        description="12 digits, the last a check digit.",
    ),
]


class AccountOpenIn(Schema):
    type: Literal["checking", "savings"]
    currency: Currency = DEFAULT_CURRENCY
    nickname: Nickname | None = None


class AccountUpdateIn(Schema):
    nickname: Nickname | None = Field(description="A name for the account; null removes it.")


class AccountOut(OutSchema):
    id: uuid.UUID
    number: str
    type: str
    currency: str
    status: str
    nickname: str | None
    balance: int = Field(description="Balance in minor units.")
    available_balance: int = Field(description="Balance minus open card holds.")
    held: int = Field(description="Open card holds in minor units.")
    daily_outgoing_limit: int
    created_at: dt.datetime
    closed_at: dt.datetime | None


class BalanceOut(OutSchema):
    account_id: uuid.UUID
    currency: str
    balance: int
    available_balance: int
    held: int
    computed_balance: int | None = Field(
        default=None, description="With ?verify=true: the sum of the account's postings."
    )
    last_balance_after: int | None = Field(
        default=None, description="With ?verify=true: balance_after of the last posting."
    )
    consistent: bool | None = Field(
        default=None, description="With ?verify=true: cached balance equals both recomputations."
    )
    at: dt.datetime | None = Field(
        default=None,
        description="With ?at=: the instant the balance, held and available amounts are of.",
    )


class BalancePoint(OutSchema):
    date: dt.date = Field(description="A day in the bank's time zone (BANK_TIMEZONE).")
    balance: int = Field(description="The balance at the end of that day (today: so far).")


class BalanceHistoryOut(OutSchema):
    account_id: uuid.UUID
    currency: str
    items: list[BalancePoint]


class BalancesItem(OutSchema):
    account_id: uuid.UUID
    number: str
    type: str
    status: str
    currency: str
    balance: int
    available_balance: int
    held: int


class BalancesOut(OutSchema):
    items: list[BalancesItem]
    next_cursor: str | None = None
    as_of: dt.datetime


class LookupOut(OutSchema):
    number: str
    currency: str
    holder_name: str = Field(description="Masked, e.g. 'A*** L***'.")


def account_out(account: Account | Any, *, default_daily_limit_minor: int) -> AccountOut:
    assert account.number is not None, "customer accounts always have a number"
    return AccountOut(
        id=account.id,
        number=account.number,
        type=account.type,
        currency=account.currency,
        status=account.status,
        nickname=account.nickname,
        balance=account.balance_minor,
        available_balance=account.balance_minor - account.held_minor,
        held=account.held_minor,
        daily_outgoing_limit=account.daily_outgoing_limit_minor or default_daily_limit_minor,
        created_at=account.created_at,
        closed_at=account.closed_at,
    )
