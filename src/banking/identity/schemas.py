from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from banking.core.schemas import Name, NoControl, OutSchema, Page, Schema
from banking.holders.schemas import HolderOut, Phone

# Length is checked by the policy (with a clear reason), not here, so that a short or long
# password is reported as a policy failure; the bound here only stops absurd bodies.
Password = Annotated[str, StringConstraints(strict=True, max_length=1024), NoControl]
Email = Annotated[
    EmailStr,
    StringConstraints(max_length=254),
    Field(
        description="An email address whose domain can receive mail: special-use domains "
        "(RFC 6761: .test, .invalid, .localhost, .local, .onion, .arpa) are refused."
    ),
]


def _lower(value: str) -> str:
    return value.strip().lower()


class SignupIn(Schema):
    email: Annotated[Email, AfterValidator(_lower)]
    password: Password
    first_name: Name
    last_name: Name
    date_of_birth: dt.date
    phone: Phone | None = None


class LoginIn(Schema):
    email: Annotated[str, StringConstraints(strict=True, max_length=254), NoControl]
    password: Password
    refresh_cookie: bool = Field(
        default=False,
        description="For the web bank: set the refresh token as an HttpOnly cookie "
        "scoped to `/v1/auth/refresh` instead of returning it (`refresh_token` is null).",
    )


class RefreshIn(Schema):
    refresh_token: Annotated[str, StringConstraints(strict=True, max_length=256)] | None = Field(
        default=None,
        description="The refresh token. Omit it to use the refresh cookie set by a login with "
        "`refresh_cookie: true`; the request must then carry `X-Requested-With: banking-web`.",
    )


class PasswordChangeIn(Schema):
    current_password: Password
    new_password: Password


class UserOut(OutSchema):
    id: uuid.UUID
    email: str
    role: str
    created_at: dt.datetime


class TokenOut(OutSchema):
    access_token: str
    refresh_token: str | None = Field(
        description="Null when the refresh token was set as a cookie (`refresh_cookie`)."
    )
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class SessionOut(OutSchema):
    id: uuid.UUID
    created_at: dt.datetime
    last_used_at: dt.datetime
    expires_at: dt.datetime
    ip: str | None
    user_agent: str | None
    current: bool = False


class SessionPage(Page[SessionOut]):
    pass


class MeOut(UserOut):
    profile: HolderOut | None
