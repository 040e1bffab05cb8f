"""A typed HTTP client for the banking API, synchronous and asynchronous.

Every operation is written once, as a method that describes its request (a `Call`); the
`operation` decorator turns it into a blocking method on `BankingClient` and an awaitable
one on `AsyncBankingClient`. What happens around a request (refreshing the access token
before it expires and once on a 401 `invalid_token`, retrying a safe request after a
network failure or a 502/503/504, turning problem+json into typed errors) is one generator
(`_ClientCore._exchange`) that yields the requests to send and receives the responses; each
client only drives it with its own I/O.

Money-moving POSTs carry an `Idempotency-Key`: a fresh uuid4 unless the caller passes one.
The key is kept for the automatic retries of that call and is reported back on the result
(`idempotency_key`, `replayed`), so a caller can retry later with the same key and the
server replays the first answer instead of moving money twice.

    with BankingClient("http://127.0.0.1:8000") as bank:
        bank.login("ada@example.com", "correct horse battery staple")
        checking = bank.open_account("checking", "USD")
        bank.deposit(checking.id, 100_00, description="Salary")
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import threading
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import (
    Any,
    Concatenate,
    Generic,
    Literal,
    ParamSpec,
    TypeVar,
    overload,
)

import httpx

__all__ = [
    "Account",
    "AccountClosed",
    "AccountFrozen",
    "AccountLookup",
    "AccountStatusConflict",
    "AmountTooLarge",
    "ApiError",
    "AsyncBankingClient",
    "AuditEvent",
    "Authorization",
    "Balance",
    "BankingClient",
    "BankingError",
    "Card",
    "Conflict",
    "CurrencyMismatch",
    "Declined",
    "EmailTaken",
    "FieldError",
    "Forbidden",
    "Holder",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyReused",
    "InsufficientFunds",
    "InsufficientRole",
    "InvalidCredentials",
    "InvalidRefreshToken",
    "InvalidRequest",
    "InvalidToken",
    "IssuedCard",
    "LimitExceeded",
    "Movement",
    "NotFound",
    "Page",
    "RateLimited",
    "SameAccount",
    "ServerError",
    "Session",
    "Statement",
    "Tokens",
    "Transaction",
    "UnexpectedResponse",
    "User",
    "ValidationFailed",
    "WeakPassword",
    "new_idempotency_key",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "banking-client/1"
RETRY_STATUSES = frozenset({502, 503, 504})
# The longest wait between two attempts without a Retry-After: exponential backoff must
# not outgrow a failover (seconds) and leave a caller asleep once the service is back.
MAX_BACKOFF_S = 5.0

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
JSON = dict[str, Any]


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- errors


class BankingError(Exception):
    """Base of every error this client raises (network errors stay `httpx` errors)."""


class UnexpectedResponse(BankingError):
    """The server answered with something this client cannot read."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body[:2000]


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str
    location: str = "body"
    type: str = ""


class ApiError(BankingError):
    """A problem+json answer: `status`, stable `code`, `detail`, `request_id`, `errors`."""

    def __init__(
        self,
        *,
        status: int,
        code: str,
        title: str,
        detail: str,
        request_id: str | None,
        errors: Sequence[FieldError] = (),
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.request_id = request_id
        self.errors = list(errors)
        self.body: dict[str, Any] = dict(body or {})
        self.headers: dict[str, str] = dict(headers or {})
        self.idempotency_key = idempotency_key


class BadRequest(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class InvalidCredentials(Unauthorized):
    pass


class InvalidToken(Unauthorized):
    pass


class InvalidRefreshToken(Unauthorized):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class EmailTaken(Conflict):
    pass


class InvalidRequest(ApiError):
    pass


class ValidationFailed(InvalidRequest):
    pass


class WeakPassword(InvalidRequest):
    pass


class IdempotencyKeyReused(InvalidRequest):
    pass


class IdempotencyKeyInFlight(Conflict):
    """The same key is still being processed; retried automatically with the same key."""


class Declined(ApiError):
    """A money movement or card payment the bank refused (and recorded as declined)."""


class InsufficientFunds(Declined):
    pass


class AccountFrozen(Declined):
    pass


class CurrencyMismatch(Declined):
    pass


class LimitExceeded(Declined):
    pass


class AccountClosed(Declined):
    pass


class AmountTooLarge(Declined):
    pass


class SameAccount(Declined):
    pass


class AccountStatusConflict(Conflict):
    """Freezing an account that is not active, or unfreezing one that is not frozen."""


class InsufficientRole(Forbidden):
    pass


class RateLimited(ApiError):
    @property
    def retry_after(self) -> float | None:
        """Seconds to wait, from the Retry-After header (None when absent or a date)."""
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class ServerError(ApiError):
    pass


_BY_CODE: dict[str, type[ApiError]] = {
    "invalid_credentials": InvalidCredentials,
    "invalid_token": InvalidToken,
    "invalid_refresh_token": InvalidRefreshToken,
    "email_taken": EmailTaken,
    "weak_password": WeakPassword,
    "validation_error": ValidationFailed,
    "idempotency_key_reused": IdempotencyKeyReused,
    "idempotency_key_in_flight": IdempotencyKeyInFlight,
    "insufficient_funds": InsufficientFunds,
    "account_frozen": AccountFrozen,
    "account_closed": AccountClosed,
    "currency_mismatch": CurrencyMismatch,
    "amount_too_large": AmountTooLarge,
    "balance_limit_exceeded": LimitExceeded,
    "same_account": SameAccount,
    "limit_exceeded": LimitExceeded,
    "daily_limit_exceeded": LimitExceeded,
    "account_status_conflict": AccountStatusConflict,
    "insufficient_role": InsufficientRole,
    "card_declined": Declined,
    "rate_limited": RateLimited,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    429: RateLimited,
}


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed error for a failed response, problem+json or not."""
    status = response.status_code
    body: dict[str, Any] = {}
    try:
        decoded = response.json()
        if isinstance(decoded, dict):
            body = decoded
    except ValueError:
        pass
    code = str(body.get("code") or f"http_{status}")
    detail = str(body.get("detail") or body.get("title") or response.reason_phrase or "error")
    errors = [
        FieldError(
            field=str(item.get("field", "")),
            reason=str(item.get("reason", "")),
            location=str(item.get("in", "body")),
            type=str(item.get("type", "")),
        )
        for item in body.get("errors") or []
        if isinstance(item, dict)
    ]
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ApiError
    return cls(
        status=status,
        code=code,
        title=str(body.get("title") or ""),
        detail=detail,
        request_id=body.get("request_id") or response.headers.get("x-request-id"),
        errors=errors,
        body=body,
        headers={key.lower(): value for key, value in response.headers.items()},
        idempotency_key=response.request.headers.get("idempotency-key"),
    )


# --------------------------------------------------------------------------- responses


class _Reader:
    """Typed access to a JSON object, raising `UnexpectedResponse` on a wrong shape."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, dict):
            raise UnexpectedResponse(f"{what}: expected a JSON object, got {type(data).__name__}")
        self.data: JSON = data
        self.what = what

    def _get(self, name: str, kind: type[T] | tuple[type, ...], optional: bool) -> Any:
        value = self.data.get(name)
        if value is None:
            if optional:
                return None
            raise UnexpectedResponse(f"{self.what}: missing field {name!r}")
        # bool is an int in Python; an amount must never be one.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UnexpectedResponse(f"{self.what}: field {name!r} has the wrong type")
        return value

    def text(self, name: str) -> str:
        return str(self._get(name, str, optional=False))

    def opt_text(self, name: str) -> str | None:
        value = self._get(name, str, optional=True)
        return None if value is None else str(value)

    def integer(self, name: str) -> int:
        return int(self._get(name, int, optional=False))

    def opt_integer(self, name: str) -> int | None:
        value = self._get(name, int, optional=True)
        return None if value is None else int(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._get(name, bool, optional=True)
        return default if value is None else bool(value)

    def opt_flag(self, name: str) -> bool | None:
        value = self._get(name, bool, optional=True)
        return None if value is None else bool(value)

    def opt_datetime(self, name: str) -> dt.datetime | None:
        value = self.opt_text(name)
        if value is None:
            return None
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise UnexpectedResponse(f"{self.what}: field {name!r} is not a timestamp") from exc

    def array(self, name: str) -> list[Any]:
        value = self._get(name, list, optional=True)
        return list(value or [])

    def obj(self, name: str) -> JSON | None:
        value = self._get(name, dict, optional=True)
        return None if value is None else dict(value)


def _items(data: Any, what: str) -> tuple[list[Any], str | None]:
    """A list body: `{"items": [...], "next_cursor": ...}` or a bare JSON array."""
    if isinstance(data, list):
        return data, None
    reader = _Reader(data, what)
    return reader.array("items"), reader.opt_text("next_cursor")


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int

    @classmethod
    def from_json(cls, data: Any) -> Tokens:
        r = _Reader(data, "tokens")
        return cls(
            r.text("access_token"),
            r.text("refresh_token"),
            r.text("token_type"),
            r.integer("expires_in"),
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """An account-holder profile (`/v1/account-holders/me`, or `profile` in `/v1/auth/me`)."""

    id: str
    user_id: str
    email: str
    first_name: str
    last_name: str
    date_of_birth: str
    phone: str | None
    address: JSON | None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Holder:
        r = _Reader(data, "account holder")
        return cls(
            id=r.text("id"),
            user_id=r.text("user_id"),
            email=r.text("email"),
            first_name=r.text("first_name"),
            last_name=r.text("last_name"),
            date_of_birth=r.text("date_of_birth"),
            phone=r.opt_text("phone"),
            address=r.obj("address"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class User:
    """A user (the sign-up answer), or with `profile` the answer of `/v1/auth/me`
    (staff created from the CLI have no profile)."""

    id: str
    email: str
    role: str
    created_at: dt.datetime | None = None
    profile: Holder | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> User:
        r = _Reader(data, "user")
        profile = r.obj("profile")
        return cls(
            id=r.text("id"),
            email=r.text("email"),
            role=r.text("role"),
            created_at=r.opt_datetime("created_at"),
            profile=Holder.from_json(profile) if profile is not None else None,
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    created_at: dt.datetime | None
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    ip: str | None
    user_agent: str | None
    current: bool

    @classmethod
    def from_json(cls, data: Any) -> Session:
        r = _Reader(data, "session")
        return cls(
            id=r.text("id"),
            created_at=r.opt_datetime("created_at"),
            last_used_at=r.opt_datetime("last_used_at"),
            expires_at=r.opt_datetime("expires_at"),
            ip=r.opt_text("ip"),
            user_agent=r.opt_text("user_agent"),
            current=r.flag("current"),
        )


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    number: str
    type: str
    currency: str
    status: str
    balance: int
    available_balance: int
    held: int = 0
    nickname: str | None = None
    daily_outgoing_limit: int | None = None
    created_at: dt.datetime | None = None
    owner_id: str | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Account:
        """An account as its owner sees it; the staff view adds `owner_id`."""
        r = _Reader(data, "account")
        return cls(
            id=r.text("id"),
            number=r.text("number"),
            type=r.text("type"),
            currency=r.text("currency"),
            status=r.text("status"),
            balance=r.integer("balance"),
            available_balance=r.integer("available_balance"),
            held=r.opt_integer("held") or 0,
            nickname=r.opt_text("nickname"),
            daily_outgoing_limit=r.opt_integer("daily_outgoing_limit"),
            created_at=r.opt_datetime("created_at"),
            owner_id=r.opt_text("owner_id"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Balance:
    balance: int
    available_balance: int
    currency: str
    held: int = 0
    account_id: str | None = None
    number: str | None = None
    computed_balance: int | None = None
    consistent: bool | None = None

    @classmethod
    def from_json(cls, data: Any) -> Balance:
        """`/v1/accounts/{id}/balance` (with `?verify=true`: `computed_balance`,
        `consistent`), or one item of `/v1/balances` (with `number`)."""
        r = _Reader(data, "balance")
        return cls(
            balance=r.integer("balance"),
            available_balance=r.integer("available_balance"),
            currency=r.text("currency"),
            held=r.opt_integer("held") or 0,
            account_id=r.opt_text("account_id"),
            number=r.opt_text("number"),
            computed_balance=r.opt_integer("computed_balance"),
            consistent=r.opt_flag("consistent"),
        )


@dataclass(frozen=True, slots=True)
class AccountLookup:
    """What a sender sees of a payee before confirming: never the full holder name."""

    number: str
    currency: str
    holder_name: str
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> AccountLookup:
        r = _Reader(data, "account lookup")
        return cls(r.text("number"), r.text("currency"), r.text("holder_name"), r.data)


@dataclass(frozen=True, slots=True)
class Movement:
    """The answer to a deposit, withdrawal or transfer: the posted journal entry.

    Deposits and withdrawals are seen from their account (`account_id`; `amount` signed,
    credits > 0); a transfer from its source (`amount` > 0, `balance_after` the source's,
    `target_account_number` masked to its last four digits)."""

    id: str
    kind: str
    status: str
    amount: int
    currency: str
    balance_after: int
    created_at: dt.datetime | None
    description: str | None
    idempotency_key: str | None
    replayed: bool
    account_id: str | None = None
    source_account_id: str | None = None
    target_account_id: str | None = None
    target_account_number: str | None = None
    raw: JSON = field(default_factory=dict, repr=False)


def _movement(response: httpx.Response) -> Movement:
    r = _Reader(_json(response), "movement")
    return Movement(
        id=r.text("id"),
        kind=r.text("kind"),
        status=r.text("status"),
        amount=r.integer("amount"),
        currency=r.text("currency"),
        balance_after=r.integer("balance_after"),
        created_at=r.opt_datetime("created_at"),
        description=r.opt_text("description"),
        idempotency_key=response.request.headers.get("idempotency-key"),
        replayed=_replayed(response),
        account_id=r.opt_text("account_id"),
        source_account_id=r.opt_text("source_account_id"),
        target_account_id=r.opt_text("target_account_id"),
        target_account_number=r.opt_text("target_account_number"),
        raw=r.data,
    )


@dataclass(frozen=True, slots=True)
class Transaction:
    id: str
    kind: str
    amount: int
    balance_after: int | None
    status: str
    created_at: dt.datetime | None
    description: str | None = None
    currency: str | None = None
    counterparty_account_number: str | None = None
    decline_reason: str | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Transaction:
        """One line of an account's history; declined attempts have no `balance_after`
        and say why in `decline_reason`."""
        r = _Reader(data, "transaction")
        return cls(
            id=r.text("id"),
            kind=r.text("kind"),
            amount=r.integer("amount"),
            balance_after=r.opt_integer("balance_after"),
            status=r.text("status"),
            created_at=r.opt_datetime("created_at"),
            description=r.opt_text("description"),
            currency=r.opt_text("currency"),
            counterparty_account_number=r.opt_text("counterparty_account_number"),
            decline_reason=r.opt_text("decline_reason"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    occurred_at: dt.datetime | None
    event_type: str
    outcome: str
    actor_id: str | None
    target_type: str | None
    target_id: str | None
    details: JSON
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> AuditEvent:
        r = _Reader(data, "audit event")
        return cls(
            id=r.integer("id"),
            occurred_at=r.opt_datetime("occurred_at"),
            event_type=r.text("event_type"),
            outcome=r.text("outcome"),
            actor_id=r.opt_text("actor_id"),
            target_type=r.opt_text("target_type"),
            target_id=r.opt_text("target_id"),
            details=r.obj("details") or {},
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Card:
    """A card as listed: never the full number nor the CVV. Limits are in minor units of
    `currency`; None means no limit."""

    id: str
    last4: str
    exp_month: int
    exp_year: int
    status: str
    type: str | None
    account_id: str | None = None
    currency: str | None = None
    per_transaction_limit: int | None = None
    daily_limit: int | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Card:
        r = _Reader(data, "card")
        return cls(
            id=r.text("id"),
            last4=r.text("last4"),
            exp_month=r.integer("exp_month"),
            exp_year=r.integer("exp_year"),
            status=r.text("status"),
            type=r.opt_text("type"),
            account_id=r.opt_text("account_id"),
            currency=r.opt_text("currency"),
            per_transaction_limit=r.opt_integer("per_transaction_limit"),
            daily_limit=r.opt_integer("daily_limit"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """The issuance answer: the only time the full PAN and CVV are shown."""

    card: Card
    pan: str = field(repr=False)
    cvv: str = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> IssuedCard:
        r = _Reader(data, "issued card")
        return cls(Card.from_json(data), r.text("pan"), r.text("cvv"))


@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    status: str
    amount: int | None
    decline_reason: str | None
    idempotency_key: str | None
    replayed: bool
    raw: JSON = field(default_factory=dict, repr=False)


def _authorization(response: httpx.Response) -> Authorization:
    return _authorization_from_json(
        _json(response),
        idempotency_key=response.request.headers.get("idempotency-key"),
        replayed=_replayed(response),
    )


def _authorization_from_json(
    data: Any, *, idempotency_key: str | None = None, replayed: bool = False
) -> Authorization:
    r = _Reader(data, "card authorization")
    return Authorization(
        id=r.text("id"),
        status=r.text("status"),
        amount=r.opt_integer("amount"),
        decline_reason=r.opt_text("decline_reason"),
        idempotency_key=idempotency_key,
        replayed=replayed,
        raw=r.data,
    )


@dataclass(frozen=True, slots=True)
class Statement:
    opening_balance: int
    closing_balance: int
    total_credits: int
    total_debits: int
    lines: list[JSON]
    pending_holds: list[JSON] = field(default_factory=list)
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Statement:
        r = _Reader(data, "statement")
        return cls(
            opening_balance=r.integer("opening_balance"),
            closing_balance=r.integer("closing_balance"),
            total_credits=r.integer("total_credits"),
            total_debits=r.integer("total_debits"),
            lines=r.array("lines"),
            pending_holds=r.array("pending_holds"),
            raw=r.data,
        )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedResponse(
            "the response is not JSON", status=response.status_code, body=response.text
        ) from exc


def _replayed(response: httpx.Response) -> bool:
    return str(response.headers.get("idempotent-replayed", "")).lower() == "true"


def _parse_with(reader: Callable[[Any], T]) -> Callable[[httpx.Response], T]:
    return lambda response: reader(_json(response))


def _parse_list(reader: Callable[[Any], T], what: str) -> Callable[[httpx.Response], list[T]]:
    return lambda response: [reader(item) for item in _items(_json(response), what)[0]]


def _parse_page(reader: Callable[[Any], T], what: str) -> Callable[[httpx.Response], Page[T]]:
    def parse(response: httpx.Response) -> Page[T]:
        items, cursor = _items(_json(response), what)
        return Page([reader(item) for item in items], cursor)

    return parse


def _no_content(_response: httpx.Response) -> None:
    return None


def _text(response: httpx.Response) -> str:
    return response.text


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def _raw_json(response: httpx.Response) -> JSON:
    return _Reader(_json(response), "response").data


# --------------------------------------------------------------------------- requests


Auth = Literal["bearer", "network", "none"]
Effect = Literal["store_tokens", "clear_tokens"]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API request, described without doing any I/O."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, str | int | bool] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: Auth = "bearer"
    idempotency_key: str | None = None
    expect: frozenset[int] = frozenset({200, 201, 204})
    effect: Effect | None = None

    @property
    def retry_safe(self) -> bool:
        """Sending it twice has the effect of sending it once."""
        return self.method in {"GET", "HEAD"} or self.idempotency_key is not None


@dataclass(frozen=True, slots=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class _Refresh:
    """Ask the driver to refresh the tokens, unless the tokens have changed since
    `generation` (another request already refreshed them)."""

    generation: int


_Step = httpx.Request | _Sleep | _Refresh
_Steps = Generator[_Step, httpx.Response | None, T]


@dataclass(slots=True)
class _TokenState:
    access_token: str | None = None
    refresh_token: str | None = None
    refresh_at: float | None = None
    generation: int = 0

    def store(self, tokens: Tokens, *, now: float, margin_s: float) -> None:
        # Refresh `margin_s` before expiry, but never earlier than halfway through a
        # short-lived token's life.
        lead = min(margin_s, tokens.expires_in / 2)
        self.access_token = tokens.access_token
        self.refresh_token = tokens.refresh_token
        self.refresh_at = now + tokens.expires_in - lead
        self.generation += 1

    def clear(self) -> None:
        self.access_token = self.refresh_token = self.refresh_at = None
        self.generation += 1

    def due(self, now: float) -> bool:
        return (
            self.refresh_token is not None
            and self.refresh_at is not None
            and now >= self.refresh_at
        )


def _problem_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class _ClientCore:
    """State and request logic shared by both clients; no I/O happens here."""

    def __init__(
        self,
        *,
        network_key: str | None,
        retries: int,
        backoff_s: float,
        refresh_margin_s: float,
        clock: Callable[[], float],
        access_token: str | None,
        refresh_token: str | None,
    ) -> None:
        self.network_key = network_key
        self.retries = retries
        self.backoff_s = backoff_s
        self.refresh_margin_s = refresh_margin_s
        self.clock = clock
        self._tokens = _TokenState(access_token, refresh_token)
        self._http_base: httpx.Client | httpx.AsyncClient

    @property
    def access_token(self) -> str | None:
        return self._tokens.access_token

    @property
    def refresh_token(self) -> str | None:
        return self._tokens.refresh_token

    def set_tokens(self, tokens: Tokens) -> None:
        """Use tokens obtained elsewhere (another client, a saved session)."""
        self._tokens.store(tokens, now=self.clock(), margin_s=self.refresh_margin_s)

    def _build(self, call: Call[Any]) -> httpx.Request:
        headers = dict(call.headers)
        if call.auth == "bearer" and self._tokens.access_token:
            headers["Authorization"] = f"Bearer {self._tokens.access_token}"
        elif call.auth == "network":
            if not self.network_key:
                raise BankingError("this call needs the card network key (network_key=...)")
            headers["X-Network-Key"] = self.network_key
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        return self._http_base.build_request(
            call.method, call.path, json=call.json, params=call.params, headers=headers
        )

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            with_header = response.headers.get("retry-after", "")
            if with_header.isdigit():
                return min(float(with_header), 30.0)
        return float(min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))

    def _exchange(self, call: Call[T]) -> _Steps[T]:
        attempt = 0
        refreshed = False
        while True:
            if call.auth == "bearer" and self._tokens.due(self.clock()):
                yield _Refresh(self._tokens.generation)
            generation = self._tokens.generation
            try:
                response = yield self._build(call)
            except httpx.TransportError:
                if not call.retry_safe or attempt >= self.retries:
                    raise
                attempt += 1
                yield _Sleep(self._delay(attempt, None))
                continue
            assert response is not None
            if (
                response.status_code == 401
                and call.auth == "bearer"
                and not refreshed
                and self._tokens.refresh_token is not None
                and _problem_code(response) == "invalid_token"
            ):
                refreshed = True
                yield _Refresh(generation)
                continue
            if (
                response.status_code in RETRY_STATUSES
                and call.retry_safe
                and attempt < self.retries
            ) or (
                # The first attempt with this key is still running on the server: ask
                # again with the same key (never a new one) and get its answer replayed.
                response.status_code == 409
                and call.idempotency_key is not None
                and attempt < self.retries
                and _problem_code(response) == "idempotency_key_in_flight"
            ):
                attempt += 1
                yield _Sleep(self._delay(attempt, response))
                continue
            return self._finish(call, response)

    def _refresh_steps(self, generation: int) -> _Steps[None]:
        if self._tokens.generation != generation or self._tokens.refresh_token is None:
            return
        call = _refresh_call(self._tokens.refresh_token)
        response = yield self._build(call)
        assert response is not None
        if response.status_code != 200:
            self._tokens.clear()
            raise error_from_response(response)
        self._finish(call, response)

    def _finish(self, call: Call[T], response: httpx.Response) -> T:
        if response.status_code not in call.expect:
            if response.status_code < 400:
                raise UnexpectedResponse(
                    f"{call.method} {call.path}: unexpected status {response.status_code}",
                    status=response.status_code,
                    body=response.text,
                )
            raise error_from_response(response)
        result = call.parse(response)
        if call.effect == "store_tokens":
            assert isinstance(result, Tokens)
            self._tokens.store(result, now=self.clock(), margin_s=self.refresh_margin_s)
        elif call.effect == "clear_tokens":
            self._tokens.clear()
        return result


def _refresh_call(refresh_token: str) -> Call[Tokens]:
    return Call(
        "POST",
        "/v1/auth/refresh",
        _parse_with(Tokens.from_json),
        json={"refresh_token": refresh_token},
        auth="none",
        expect=frozenset({200}),
        effect="store_tokens",
    )


# --------------------------------------------------------------------------- operations


class _Operation(Generic[P, T]):
    """An API method written once: `build` describes the request; reading the attribute
    on a client gives a blocking method (`BankingClient`) or an awaitable one
    (`AsyncBankingClient`) with the same parameters."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> _Operation[P, T]: ...
    @overload
    def __get__(
        self, client: AsyncBankingClient, owner: type[Any]
    ) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, client: BankingClient, owner: type[Any]) -> Callable[P, T]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        build = self.build

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._perform(build(client, *args, **kwargs))

        functools.update_wrapper(method, build)
        return method


class _Paginated(Generic[P, T]):
    """A list walked page by page: an iterator (sync) or an async iterator (async)."""

    def __init__(
        self, build: Callable[Concatenate[Any, P], Callable[[str | None], Call[Page[T]]]]
    ) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> _Paginated[P, T]: ...
    @overload
    def __get__(
        self, client: AsyncBankingClient, owner: type[Any]
    ) -> Callable[P, AsyncIterator[T]]: ...
    @overload
    def __get__(self, client: BankingClient, owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        build = self.build

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._walk(build(client, *args, **kwargs))

        functools.update_wrapper(method, build)
        return method


def operation(build: Callable[Concatenate[Any, P], Call[T]]) -> _Operation[P, T]:
    return _Operation(build)


def paginated(
    build: Callable[Concatenate[Any, P], Callable[[str | None], Call[Page[T]]]],
) -> _Paginated[P, T]:
    return _Paginated(build)


def _key(idempotency_key: str | None) -> str:
    return idempotency_key if idempotency_key is not None else new_idempotency_key()


def _body(**fields: Any) -> JSON:
    """A JSON body without the optional fields the caller left out."""
    return {name: value for name, value in fields.items() if value is not None}


def _transactions_call(
    account_id: str, limit: int, cursor: str | None, filters: Mapping[str, str]
) -> Call[Page[Transaction]]:
    params: dict[str, str | int | bool] = {"limit": limit, **filters}
    if cursor is not None:
        params["cursor"] = cursor
    return Call(
        "GET",
        f"/v1/accounts/{account_id}/transactions",
        _parse_page(Transaction.from_json, "transactions"),
        params=params,
    )


class _Api(_ClientCore):
    """Every API operation, each written once for both clients."""

    # -- health and identity

    @operation
    def health(self) -> Call[JSON]:
        """Readiness: `{"status": "ok", "checks": {...}}`; a 503 raises `ServerError`."""
        return Call("GET", "/v1/health/ready", _raw_json, auth="none")

    @operation
    def signup(
        self,
        email: str,
        password: str,
        *,
        first_name: str,
        last_name: str,
        date_of_birth: dt.date | str,
        phone: str | None = None,
    ) -> Call[User]:
        born = date_of_birth.isoformat() if isinstance(date_of_birth, dt.date) else date_of_birth
        body = _body(
            email=email,
            password=password,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=born,
            phone=phone,
        )
        return Call(
            "POST",
            "/v1/auth/signup",
            _parse_with(User.from_json),
            json=body,
            auth="none",
            expect=frozenset({201}),
        )

    @operation
    def login(self, email: str, password: str) -> Call[Tokens]:
        """Log in; the client keeps the tokens and refreshes them as needed."""
        return Call(
            "POST",
            "/v1/auth/login",
            _parse_with(Tokens.from_json),
            json={"email": email, "password": password},
            auth="none",
            expect=frozenset({200}),
            effect="store_tokens",
        )

    @operation
    def refresh(self, refresh_token: str | None = None) -> Call[Tokens]:
        """Rotate the refresh token now (normally done automatically)."""
        token = refresh_token or self._tokens.refresh_token
        if token is None:
            raise BankingError("no refresh token: log in first")
        return _refresh_call(token)

    @operation
    def logout(self) -> Call[None]:
        return Call("POST", "/v1/auth/logout", _no_content, effect="clear_tokens")

    @operation
    def logout_all(self) -> Call[None]:
        return Call("POST", "/v1/auth/logout-all", _no_content, effect="clear_tokens")

    @operation
    def change_password(self, current_password: str, new_password: str) -> Call[None]:
        body = {"current_password": current_password, "new_password": new_password}
        return Call("POST", "/v1/auth/password", _no_content, json=body)

    @operation
    def me(self) -> Call[User]:
        return Call("GET", "/v1/auth/me", _parse_with(User.from_json))

    @operation
    def holder(self) -> Call[Holder]:
        """The caller's account-holder profile (404 `NotFound` for staff without one)."""
        return Call("GET", "/v1/account-holders/me", _parse_with(Holder.from_json))

    @operation
    def update_holder(
        self,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        phone: str | None = None,
        address: Mapping[str, str] | None = None,
    ) -> Call[Holder]:
        body = _body(
            first_name=first_name,
            last_name=last_name,
            phone=phone,
            address=dict(address) if address is not None else None,
        )
        return Call("PATCH", "/v1/account-holders/me", _parse_with(Holder.from_json), json=body)

    @operation
    def sessions(self) -> Call[list[Session]]:
        return Call("GET", "/v1/auth/sessions", _parse_list(Session.from_json, "sessions"))

    @operation
    def revoke_session(self, session_id: str) -> Call[None]:
        return Call("DELETE", f"/v1/auth/sessions/{session_id}", _no_content)

    # -- accounts

    @operation
    def open_account(
        self, type: Literal["checking", "savings"] = "checking", currency: str = "USD"
    ) -> Call[Account]:
        return Call(
            "POST",
            "/v1/accounts",
            _parse_with(Account.from_json),
            json={"type": type, "currency": currency},
            expect=frozenset({201}),
        )

    @operation
    def list_accounts(self) -> Call[list[Account]]:
        """The caller's accounts, oldest first."""
        return Call("GET", "/v1/accounts", _parse_list(Account.from_json, "accounts"))

    @operation
    def all_balances(self) -> Call[list[Balance]]:
        """Every one of the caller's balances, read in one consistent snapshot."""
        return Call("GET", "/v1/balances", _parse_list(Balance.from_json, "balances"))

    @operation
    def rename_account(self, account_id: str, nickname: str | None) -> Call[Account]:
        return Call(
            "PATCH",
            f"/v1/accounts/{account_id}",
            _parse_with(Account.from_json),
            json={"nickname": nickname},
        )

    @operation
    def close_account(self, account_id: str) -> Call[Account]:
        return Call("POST", f"/v1/accounts/{account_id}/close", _parse_with(Account.from_json))

    @operation
    def get_account(self, account_id: str) -> Call[Account]:
        return Call("GET", f"/v1/accounts/{account_id}", _parse_with(Account.from_json))

    @operation
    def balance(self, account_id: str, *, verify: bool = False) -> Call[Balance]:
        params: dict[str, str | int | bool] = {"verify": "true"} if verify else {}
        return Call(
            "GET",
            f"/v1/accounts/{account_id}/balance",
            _parse_with(Balance.from_json),
            params=params,
        )

    @operation
    def lookup_account(self, number: str) -> Call[AccountLookup]:
        """Who an account number belongs to (masked), to confirm a payee before sending."""
        return Call(
            "GET",
            "/v1/accounts/lookup",
            _parse_with(AccountLookup.from_json),
            params={"number": number},
        )

    # -- money movements

    @operation
    def deposit(
        self,
        account_id: str,
        amount: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Call[Movement]:
        return Call(
            "POST",
            f"/v1/accounts/{account_id}/deposits",
            _movement,
            json=_body(amount=amount, description=description),
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def withdraw(
        self,
        account_id: str,
        amount: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Call[Movement]:
        return Call(
            "POST",
            f"/v1/accounts/{account_id}/withdrawals",
            _movement,
            json=_body(amount=amount, description=description),
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def transfer(
        self,
        source_account_id: str,
        amount: int,
        *,
        target_account_id: str | None = None,
        target_account_number: str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Call[Movement]:
        """Move money to one of your accounts (by id) or anyone's (by account number)."""
        if (target_account_id is None) == (target_account_number is None):
            raise ValueError("give exactly one of target_account_id and target_account_number")
        body = _body(
            source_account_id=source_account_id,
            target_account_id=target_account_id,
            target_account_number=target_account_number,
            amount=amount,
            description=description,
        )
        return Call(
            "POST",
            "/v1/transfers",
            _movement,
            json=body,
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def transactions_page(
        self, /, account_id: str, *, limit: int = 50, cursor: str | None = None, **filters: str
    ) -> Call[Page[Transaction]]:
        """One page of an account's history; filters such as `status="declined"`."""
        return _transactions_call(account_id, limit, cursor, filters)

    @paginated
    def transactions(
        self, /, account_id: str, *, limit: int = 50, **filters: str
    ) -> Callable[[str | None], Call[Page[Transaction]]]:
        """Every matching entry of an account's history, fetching pages as needed."""
        return lambda cursor: _transactions_call(account_id, limit, cursor, filters)

    # -- cards

    @operation
    def issue_card(
        self, account_id: str, type: Literal["virtual", "physical"] = "virtual"
    ) -> Call[IssuedCard]:
        return Call(
            "POST",
            f"/v1/accounts/{account_id}/cards",
            _parse_with(IssuedCard.from_json),
            json={"type": type},
            expect=frozenset({201}),
        )

    @operation
    def list_cards(self, *, limit: int = 100) -> Call[list[Card]]:
        return Call(
            "GET", "/v1/cards", _parse_list(Card.from_json, "cards"), params={"limit": limit}
        )

    @operation
    def freeze_card(self, card_id: str) -> Call[Card]:
        return Call("POST", f"/v1/cards/{card_id}/freeze", _parse_with(Card.from_json))

    @operation
    def unfreeze_card(self, card_id: str) -> Call[Card]:
        return Call("POST", f"/v1/cards/{card_id}/unfreeze", _parse_with(Card.from_json))

    @operation
    def set_card_limits(
        self,
        card_id: str,
        *,
        per_transaction: int | None = None,
        daily: int | None = None,
        remove: Iterable[Literal["per_transaction", "daily"]] = (),
    ) -> Call[Card]:
        """Spending limits in the card's minor units: None leaves a limit unchanged, a name
        in `remove` takes that limit away."""
        body: JSON = _body(per_transaction_limit=per_transaction, daily_limit=daily)
        for name in remove:
            body[f"{name}_limit"] = None
        return Call("PATCH", f"/v1/cards/{card_id}/limits", _parse_with(Card.from_json), json=body)

    @operation
    def card_authorizations(
        self, card_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Call[Page[Authorization]]:
        """One page of the card's payments (authorizations), newest first."""
        params: dict[str, str | int | bool] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return Call(
            "GET",
            f"/v1/cards/{card_id}/authorizations",
            _parse_page(_authorization_from_json, "card authorizations"),
            params=params,
        )

    @operation
    def authorize_card(
        self,
        *,
        card_number: str,
        exp_month: int,
        exp_year: int,
        cvv: str,
        amount: int,
        currency: str,
        merchant_name: str,
        merchant_category: str,
        idempotency_key: str | None = None,
    ) -> Call[Authorization]:
        """A card payment as the card network sends it (needs `network_key`). A decline
        raises `Declined` (or a subclass) when the server answers with an error status."""
        body = {
            "card_number": card_number,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "cvv": cvv,
            "amount": amount,
            "currency": currency,
            "merchant_name": merchant_name,
            "merchant_category": merchant_category,
        }
        return Call(
            "POST",
            "/v1/card-authorizations",
            _authorization,
            json=body,
            auth="network",
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def capture_authorization(
        self, authorization_id: str, amount: int, *, idempotency_key: str | None = None
    ) -> Call[Authorization]:
        return Call(
            "POST",
            f"/v1/card-authorizations/{authorization_id}/capture",
            _authorization,
            json={"amount": amount},
            auth="network",
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def void_authorization(
        self, authorization_id: str, *, idempotency_key: str | None = None
    ) -> Call[Authorization]:
        return Call(
            "POST",
            f"/v1/card-authorizations/{authorization_id}/void",
            _authorization,
            auth="network",
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    # -- staff (support and admin)

    @operation
    def admin_accounts_page(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        status: str | None = None,
        currency: str | None = None,
        owner_id: str | None = None,
        number: str | None = None,
    ) -> Call[Page[Account]]:
        """Accounts across the bank (staff), filtered; each carries `owner_id`."""
        params = _body(
            limit=limit,
            cursor=cursor,
            status=status,
            currency=currency,
            owner_id=owner_id,
            number=number,
        )
        return Call(
            "GET", "/v1/admin/accounts", _parse_page(Account.from_json, "accounts"), params=params
        )

    @operation
    def admin_account(self, account_id: str) -> Call[Account]:
        return Call("GET", f"/v1/admin/accounts/{account_id}", _parse_with(Account.from_json))

    @operation
    def freeze_account(self, account_id: str, *, reason: str | None = None) -> Call[Account]:
        """Admin only: outgoing money is declined `account_frozen` until unfrozen."""
        return Call(
            "POST",
            f"/v1/admin/accounts/{account_id}/freeze",
            _parse_with(Account.from_json),
            json=_body(reason=reason),
        )

    @operation
    def unfreeze_account(self, account_id: str, *, reason: str | None = None) -> Call[Account]:
        return Call(
            "POST",
            f"/v1/admin/accounts/{account_id}/unfreeze",
            _parse_with(Account.from_json),
            json=_body(reason=reason),
        )

    @operation
    def admin_holders_page(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        email: str | None = None,
        name: str | None = None,
    ) -> Call[Page[Holder]]:
        params = _body(limit=limit, cursor=cursor, email=email, name=name)
        return Call(
            "GET",
            "/v1/admin/account-holders",
            _parse_page(Holder.from_json, "account holders"),
            params=params,
        )

    @operation
    def admin_transactions_page(
        self, /, *, limit: int = 50, cursor: str | None = None, **filters: str
    ) -> Call[Page[JSON]]:
        """Journal entries across the bank (staff): `status`, `kind`, `account_id`, ..."""
        params: dict[str, str | int | bool] = {"limit": limit, **filters}
        if cursor is not None:
            params["cursor"] = cursor
        return Call(
            "GET",
            "/v1/admin/transactions",
            _parse_page(lambda item: _Reader(item, "entry").data, "entries"),
            params=params,
        )

    @operation
    def audit_page(
        self, /, *, limit: int = 50, cursor: str | None = None, **filters: str
    ) -> Call[Page[AuditEvent]]:
        """The audit log, newest first (admin only): `user`, `event_type`, `since`, `until`."""
        params: dict[str, str | int | bool] = {"limit": limit, **filters}
        if cursor is not None:
            params["cursor"] = cursor
        return Call(
            "GET",
            "/v1/admin/audit",
            _parse_page(AuditEvent.from_json, "audit events"),
            params=params,
        )

    # -- statements

    @operation
    def statements(self, account_id: str) -> Call[list[JSON]]:
        """The months with a statement for the account."""
        return Call(
            "GET",
            f"/v1/accounts/{account_id}/statements",
            _parse_list(lambda item: _Reader(item, "statement month").data, "statements"),
        )

    @operation
    def statement(self, account_id: str, month: str) -> Call[Statement]:
        """The statement for `month` (YYYY-MM); the current month is a statement to date."""
        return Call(
            "GET",
            f"/v1/accounts/{account_id}/statements/{month}",
            _parse_with(Statement.from_json),
            params={"format": "json"},
        )

    @operation
    def statement_csv(self, account_id: str, month: str) -> Call[str]:
        return Call(
            "GET", f"/v1/accounts/{account_id}/statements/{month}", _text, params={"format": "csv"}
        )

    @operation
    def statement_pdf(self, account_id: str, month: str) -> Call[bytes]:
        return Call(
            "GET", f"/v1/accounts/{account_id}/statements/{month}", _bytes, params={"format": "pdf"}
        )


# --------------------------------------------------------------------------- the clients


def _http_options(base_url: str, timeout_s: float) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "timeout": timeout_s,
        "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
    }


class BankingClient(_Api):
    """Blocking client; safe to share between threads (token refreshes are serialized)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 10.0,
        network_key: str | None = None,
        retries: int = 2,
        backoff_s: float = 0.2,
        refresh_margin_s: float = 30.0,
        access_token: str | None = None,
        refresh_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            network_key=network_key,
            retries=retries,
            backoff_s=backoff_s,
            refresh_margin_s=refresh_margin_s,
            clock=clock,
            access_token=access_token,
            refresh_token=refresh_token,
        )
        self._http = httpx.Client(transport=transport, **_http_options(base_url, timeout_s))
        self._http_base = self._http
        self._sleep = sleep
        self._refresh_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BankingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _perform(self, call: Call[T]) -> T:
        return self._drive(self._exchange(call))

    def _drive(self, steps: _Steps[R]) -> R:
        reply: httpx.Response | None = None
        failure: httpx.TransportError | None = None
        while True:
            try:
                step = steps.throw(failure) if failure is not None else steps.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, failure = None, None
            if isinstance(step, _Sleep):
                self._sleep(step.seconds)
            elif isinstance(step, _Refresh):
                with self._refresh_lock:
                    self._drive(self._refresh_steps(step.generation))
            else:
                try:
                    reply = self._http.send(step)
                except httpx.TransportError as exc:
                    failure = exc

    def _walk(self, page_call: Callable[[str | None], Call[Page[T]]]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            page = self._perform(page_call(cursor))
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class AsyncBankingClient(_Api):
    """Asyncio client; pass `transport=httpx.ASGITransport(app)` to call an app in-process."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 10.0,
        network_key: str | None = None,
        retries: int = 2,
        backoff_s: float = 0.2,
        refresh_margin_s: float = 30.0,
        access_token: str | None = None,
        refresh_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = _async_sleep,
    ) -> None:
        super().__init__(
            network_key=network_key,
            retries=retries,
            backoff_s=backoff_s,
            refresh_margin_s=refresh_margin_s,
            clock=clock,
            access_token=access_token,
            refresh_token=refresh_token,
        )
        self._http = httpx.AsyncClient(transport=transport, **_http_options(base_url, timeout_s))
        self._http_base = self._http
        self._sleep = sleep
        self._refresh_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncBankingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _perform(self, call: Call[T]) -> T:
        return await self._drive(self._exchange(call))

    async def _drive(self, steps: _Steps[R]) -> R:
        reply: httpx.Response | None = None
        failure: httpx.TransportError | None = None
        while True:
            try:
                step = steps.throw(failure) if failure is not None else steps.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply, failure = None, None
            if isinstance(step, _Sleep):
                await self._sleep(step.seconds)
            elif isinstance(step, _Refresh):
                async with self._refresh_lock:
                    await self._drive(self._refresh_steps(step.generation))
            else:
                try:
                    reply = await self._http.send(step)
                except httpx.TransportError as exc:
                    failure = exc

    async def _walk(self, page_call: Callable[[str | None], Call[Page[T]]]) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            page = await self._perform(page_call(cursor))
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor
