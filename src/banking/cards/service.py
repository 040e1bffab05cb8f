"""Cards: issuance, the PAN vault, freezing, limits, and card payments as holds.

Guarantees: the full PAN and CVV exist in clear only while the issuance request runs and
in its response; at rest the PAN is AES-256-GCM ciphertext plus a keyed digest and the CVV
only a keyed digest (see `vault.py`); neither is ever logged or audited. A member sees and
changes only their own cards (anything else is 404). Every authorization, approved or
declined, is recorded with its reason in the same commit as its effect; an approval holds
its amount on the account through `banking.ledger.holds` (available balance drops, the
balance does not), so concurrent authorizations never hold more than the available
balance. A capture is one ledger entry to the card-network settlement account that
releases the whole hold; a void or an expiry (after CARD_HOLD_DAYS; released by the write
path only, see `banking.ledger.lapsed`: reads show a lapsed hold as expired and never
write) releases it, and cancelling the
card voids its open holds in the same commit. A hold counts toward the account's daily
outgoing limit when it is authorized, and its capture does not count again (see
`banking.ledger.holds`). Wrong CVVs and wrong expiry dates are counted per card under the
card's row lock; at CARD_CVV_MAX_FAILURES in a row the card is frozen by the bank. With an
Idempotency-Key the network's answer is stored in the same commit and replayed; the stored
fingerprint holds keyed digests in place of the card number and CVV.

The code lives in one module per responsibility; this module re-exports their public
names, so callers keep `from banking.cards import service as cards`:

- `common.py`: tables, errors, decline reasons, the vault for the configured keys;
- `reads.py`: card and authorization reads, their event shapes;
- `issuing.py`: issuing a card, re-encrypting card data under a new key;
- `lifecycle.py`: freeze, unfreeze, cancel, limits;
- `network.py`: the network's authorizations (card checks, CVV attempts, limits, holds);
- `settlement.py`: capture, refund, void;
- `expiry.py`: releasing lapsed holds.
"""

from __future__ import annotations

from banking.cards.common import (
    ACCOUNT,
    AUTHORIZATION,
    BRAND,
    CARD,
    CARD_CANCELLED,
    CARD_EXPIRED,
    CARD_FROZEN,
    CARD_UNKNOWN,
    COUNTED_DECLINES,
    CVV_ATTEMPTS_EXCEEDED,
    CVV_MISMATCH,
    DAILY_LIMIT,
    EXPIRE_BATCH,
    EXPIRY_MISMATCH,
    NETWORK_SCOPE,
    PAN_ATTEMPTS,
    ROTATE_BATCH,
    TRANSACTION_LIMIT,
    VALID_YEARS,
    AccountNotActive,
    AuthorizationExpired,
    AuthorizationNotCaptured,
    AuthorizationNotOpen,
    CaptureExceedsAuthorization,
    CardCancelled,
    CardFrozenByAdmin,
    CardholderNameRequired,
    CardStatusConflict,
    CardView,
    IssuedCard,
    expiry_end,
    vault_for,
)
from banking.cards.expiry import (
    expire_all_due,
)
from banking.cards.issuing import (
    issue_card,
    rotate_key,
)
from banking.cards.lifecycle import (
    cancel_card,
    freeze_card,
    set_limits,
    unfreeze_card,
)
from banking.cards.network import (
    NetworkAnswer,
    authorize,
    network_key_matches,
)
from banking.cards.reads import (
    authorization_out,
    card_authorizations_sync,
    card_event_data,
    get_authorization_sync,
    get_card_sync,
    list_cards_sync,
)
from banking.cards.settlement import (
    capture,
    refund,
    void,
)

__all__ = [
    "ACCOUNT",
    "AUTHORIZATION",
    "BRAND",
    "CARD",
    "CARD_CANCELLED",
    "CARD_EXPIRED",
    "CARD_FROZEN",
    "CARD_UNKNOWN",
    "COUNTED_DECLINES",
    "CVV_ATTEMPTS_EXCEEDED",
    "CVV_MISMATCH",
    "DAILY_LIMIT",
    "EXPIRE_BATCH",
    "EXPIRY_MISMATCH",
    "NETWORK_SCOPE",
    "PAN_ATTEMPTS",
    "ROTATE_BATCH",
    "TRANSACTION_LIMIT",
    "VALID_YEARS",
    "AccountNotActive",
    "AuthorizationExpired",
    "AuthorizationNotCaptured",
    "AuthorizationNotOpen",
    "CaptureExceedsAuthorization",
    "CardCancelled",
    "CardFrozenByAdmin",
    "CardStatusConflict",
    "CardView",
    "CardholderNameRequired",
    "IssuedCard",
    "NetworkAnswer",
    "authorization_out",
    "authorize",
    "cancel_card",
    "capture",
    "card_authorizations_sync",
    "card_event_data",
    "expire_all_due",
    "expiry_end",
    "freeze_card",
    "get_authorization_sync",
    "get_card_sync",
    "issue_card",
    "list_cards_sync",
    "network_key_matches",
    "refund",
    "rotate_key",
    "set_limits",
    "unfreeze_card",
    "vault_for",
    "void",
]
