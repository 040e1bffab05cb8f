from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from banking.accounts.schemas import AccountNumber, Nickname
from banking.core.schemas import Name, OutSchema, Schema


class PayeeIn(Schema):
    name: Name = Field(description="Your name for the payee, e.g. 'Landlord'.")
    account_number: AccountNumber
    nickname: Nickname | None = None


class PayeeUpdateIn(Schema):
    name: Name | None = None
    nickname: Nickname | None = Field(default=None, description="null removes it.")


class PayeeOut(OutSchema):
    id: uuid.UUID
    name: str
    nickname: str | None
    account_number: str = Field(description="The payee's full account number.")
    currency: str
    holder_name: str = Field(description="The account holder's name, masked.")
    created_at: dt.datetime
    cooldown_ends_at: dt.datetime | None = Field(
        description="Until then, transfers to this payee above the new-payee limit are "
        "declined (new_payee_limit); null when the control is off or over."
    )


class PayeePage(OutSchema):
    items: list[PayeeOut]
    next_cursor: str | None = None
