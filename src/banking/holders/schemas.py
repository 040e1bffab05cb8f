from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from banking.core.schemas import Name, NoControl, OutSchema, Page, Schema
from banking.holders.models import AccountHolder

Phone = Annotated[
    str,
    StringConstraints(
        strict=True,
        strip_whitespace=True,
        # 6-20 characters after an optional "+", none of them space at either end: the
        # same phones once stripped, and a schema that does not offer " 00000".
        pattern=r"^(\+[0-9 ()-]{5,19}|[0-9()-][0-9 ()-]{4,18})[0-9()-]$",
    ),
]
AddressLine = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=200),
    NoControl,
]
City = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=100),
    NoControl,
]
PostalCode = Annotated[
    str,
    StringConstraints(
        strict=True, strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{1,18}$"
    ),
]


def _upper(value: str) -> str:
    return value.upper()


Country = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, pattern=r"^[A-Za-z]{2}$"),
    AfterValidator(_upper),
]


class AddressIn(Schema):
    line1: AddressLine
    line2: AddressLine | None = None
    city: City
    postal_code: PostalCode
    country: Country


class AddressOut(OutSchema):
    line1: str
    line2: str | None
    city: str | None
    postal_code: str | None
    country: str | None


class HolderPatchIn(Schema):
    """Only the fields sent are changed. `phone: null` or `address: null` clears them;
    names cannot be cleared. Email and date of birth cannot be changed here."""

    # Optional but never null (`_names_not_null`): the schema shows no null.
    first_name: Name | SkipJsonSchema[None] = None
    last_name: Name | SkipJsonSchema[None] = None
    phone: Phone | None = None
    address: AddressIn | None = None

    @model_validator(mode="after")
    def _names_not_null(self) -> HolderPatchIn:
        for name in ("first_name", "last_name"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class HolderOut(OutSchema):
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    date_of_birth: dt.date
    phone: str | None
    address: AddressOut | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, holder: AccountHolder | Any, *, email: str) -> HolderOut:
        address = None
        if holder.address_line1:
            address = AddressOut(
                line1=holder.address_line1,
                line2=holder.address_line2,
                city=holder.city,
                postal_code=holder.postal_code,
                country=holder.country,
            )
        values: dict[str, Any] = {
            "id": holder.id,
            "user_id": holder.user_id,
            "email": email,
            "first_name": holder.first_name,
            "last_name": holder.last_name,
            "date_of_birth": holder.date_of_birth,
            "phone": holder.phone,
            "address": address,
            "created_at": holder.created_at,
            "updated_at": holder.updated_at,
        }
        return cls(**values)


class HolderPage(Page[HolderOut]):
    pass
