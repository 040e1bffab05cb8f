"""The errors this client raises: `BankingError` and its typed `ApiError` family, one
class per stable problem+json `code` (and per status when the code is unknown), and
`error_from_response`, which turns a failed response into one of them."""

from __future__ import annotations

from collections.abc import (
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import (
    Any,
)

import httpx


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


class NewPayeeLimit(Declined):
    """A transfer above NEW_PAYEE_LIMIT_MINOR to a payee added less than
    NEW_PAYEE_COOLDOWN_S ago."""


class BatchRejected(Declined):
    """An all_or_nothing batch in which an item was refused: nothing posted. The body's
    `failed_item_index` and `reason` say which item and why."""


class PayeeExists(Conflict):
    pass


class ScheduleNotActive(Conflict):
    pass


class AlreadyReversed(Declined):
    """The reversals or refunds of an entry would add up to more than the entry."""


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
    "already_reversed": AlreadyReversed,
    "limit_exceeded": LimitExceeded,
    "daily_limit_exceeded": LimitExceeded,
    "account_status_conflict": AccountStatusConflict,
    "new_payee_limit": NewPayeeLimit,
    "batch_rejected": BatchRejected,
    "payee_exists": PayeeExists,
    "schedule_not_active": ScheduleNotActive,
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
