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

The package, one concern a module:

- `transport`: `Call` (a request described without I/O) and `_ClientCore` (token refresh,
  retries with the same Idempotency-Key and backoff, typed errors), driven by each client;
- `operations`: the `operation`/`paginated` descriptors that write a method once for both;
- `accounts_api`, `services_api`: the operations themselves;
- `clients`: `BankingClient` and `AsyncBankingClient`;
- `models`, `movements`, `parsing`: the typed results and how responses are read;
- `errors`: `BankingError`, `ApiError` and one class per problem code;
- `webhooks`: `verify_webhook`.

Every public name is importable from `banking.client`.
"""

from __future__ import annotations

from banking.client.clients import (
    AsyncBankingClient,
    BankingClient,
)
from banking.client.errors import (
    AccountClosed,
    AccountFrozen,
    AccountStatusConflict,
    AlreadyReversed,
    AmountTooLarge,
    ApiError,
    BadRequest,
    BankingError,
    BatchRejected,
    Conflict,
    CurrencyMismatch,
    Declined,
    EmailTaken,
    FieldError,
    Forbidden,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InsufficientFunds,
    InsufficientRole,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidRequest,
    InvalidToken,
    LimitExceeded,
    NewPayeeLimit,
    NotFound,
    PayeeExists,
    RateLimited,
    SameAccount,
    ScheduleNotActive,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    ValidationFailed,
    WeakPassword,
)
from banking.client.errors import (
    error_from_response as error_from_response,
)
from banking.client.models import (
    Account,
    AccountLookup,
    AuditEvent,
    Balance,
    BalanceHistory,
    BalancePoint,
    Card,
    Holder,
    IssuedCard,
    Payee,
    ScheduledTransfer,
    Session,
    Statement,
    Tokens,
    User,
)
from banking.client.movements import (
    Authorization,
    LimitChange,
    Movement,
    Reversal,
    Transaction,
    TransferBatch,
)
from banking.client.operations import (
    operation as operation,
)
from banking.client.operations import (
    paginated as paginated,
)
from banking.client.parsing import (
    JSON as JSON,
)
from banking.client.parsing import (
    Page,
)
from banking.client.transport import (
    DEFAULT_BASE_URL as DEFAULT_BASE_URL,
)
from banking.client.transport import (
    MAX_BACKOFF_S as MAX_BACKOFF_S,
)
from banking.client.transport import (
    RETRY_STATUSES as RETRY_STATUSES,
)
from banking.client.transport import (
    USER_AGENT as USER_AGENT,
)
from banking.client.transport import (
    Auth as Auth,
)
from banking.client.transport import (
    Call as Call,
)
from banking.client.transport import (
    Effect as Effect,
)
from banking.client.transport import (
    new_idempotency_key,
)
from banking.client.webhooks import (
    WebhookVerificationError,
    verify_webhook,
)

__all__ = [
    "Account",
    "AccountClosed",
    "AccountFrozen",
    "AccountLookup",
    "AccountStatusConflict",
    "AlreadyReversed",
    "AmountTooLarge",
    "ApiError",
    "AsyncBankingClient",
    "AuditEvent",
    "Authorization",
    "BadRequest",
    "Balance",
    "BalanceHistory",
    "BalancePoint",
    "BankingClient",
    "BankingError",
    "BatchRejected",
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
    "LimitChange",
    "LimitExceeded",
    "Movement",
    "NewPayeeLimit",
    "NotFound",
    "Page",
    "Payee",
    "PayeeExists",
    "RateLimited",
    "Reversal",
    "SameAccount",
    "ScheduleNotActive",
    "ScheduledTransfer",
    "ServerError",
    "Session",
    "Statement",
    "Tokens",
    "Transaction",
    "TransferBatch",
    "Unauthorized",
    "UnexpectedResponse",
    "User",
    "ValidationFailed",
    "WeakPassword",
    "WebhookVerificationError",
    "new_idempotency_key",
    "verify_webhook",
]
