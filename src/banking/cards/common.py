"""Shared by the cards modules: the tables, the domain's errors and decline reasons, the
vault for the configured keys, and the small value types (`CardView`, `IssuedCard`)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table

from banking.accounts.models import Account
from banking.cards.models import (
    Card,
    CardAuthorization,
)
from banking.cards.vault import Vault
from banking.core.config import Settings
from banking.core.errors import Conflict, InvalidRequest
from banking.core.logging import get_logger

CARD = cast(Table, Card.__table__)
ACCOUNT = cast(Table, Account.__table__)
AUTHORIZATION = cast(Table, CardAuthorization.__table__)


BRAND = "visa"
VALID_YEARS = 4
PAN_ATTEMPTS = 8
EXPIRE_BATCH = 500
ROTATE_BATCH = 200
NETWORK_SCOPE = "network:card-network"
log = get_logger("banking.cards.service")  # the logger name the cards logs have always carried


# -- errors


class AccountNotActive(Conflict):
    code = "account_not_active"
    title = "Cards can only be issued on an active account."


class CardStatusConflict(Conflict):
    code = "card_status_conflict"
    title = "The card is not in a status that allows this change."


class CardCancelled(Conflict):
    code = "card_cancelled"
    title = "The card is cancelled; nothing about it can change."


class CardFrozenByAdmin(Conflict):
    code = "card_frozen_by_admin"
    title = "The card was frozen by the bank; only the bank can unfreeze it."


class CardholderNameRequired(InvalidRequest):
    code = "cardholder_name_required"
    title = "No account-holder profile to take the name from: give `cardholder_name`."


class AuthorizationNotOpen(Conflict):
    code = "authorization_not_open"
    title = "The authorization is no longer approved (already captured, voided or declined)."


class AuthorizationExpired(Conflict):
    code = "authorization_expired"
    title = "The authorization's hold lapsed (CARD_HOLD_DAYS) and was released."


class AuthorizationNotCaptured(Conflict):
    code = "authorization_not_captured"
    title = "Only a captured card payment can be refunded."


class CaptureExceedsAuthorization(InvalidRequest):
    code = "capture_exceeds_authorization"
    title = "A capture cannot be larger than the authorized amount."


# Decline reasons of an authorization (answered as status=declined, never as an error).
CARD_UNKNOWN = "card_unknown"
CARD_CANCELLED = "card_cancelled"
CARD_FROZEN = "card_frozen"
EXPIRY_MISMATCH = "expiry_mismatch"
CARD_EXPIRED = "card_expired"
CVV_MISMATCH = "cvv_mismatch"
CVV_ATTEMPTS_EXCEEDED = "cvv_attempts_exceeded"
# Declines that count toward CARD_CVV_MAX_FAILURES (failed checks of card data).
COUNTED_DECLINES = frozenset({CVV_MISMATCH, EXPIRY_MISMATCH})
TRANSACTION_LIMIT = "card_transaction_limit_exceeded"
DAILY_LIMIT = "card_daily_limit_exceeded"


# -- the vault


@lru_cache(maxsize=8)
def _vault(current: str, previous: tuple[str, ...]) -> Vault:
    return Vault(current, list(previous))


def vault_for(settings: Settings) -> Vault:
    return _vault(settings.card_encryption_key, tuple(settings.card_encryption_previous_keys))


# -- cards (member and admin)


@dataclass(frozen=True, slots=True)
class CardView:
    card: Card | Any
    currency: str


@dataclass(frozen=True, slots=True)
class IssuedCard:
    card: Card
    currency: str
    pan: str
    cvv: str


def expiry_end(exp_month: int, exp_year: int) -> dt.datetime:
    """A card is valid through the last moment of its expiry month (UTC)."""
    last_day = calendar.monthrange(exp_year, exp_month)[1]
    return dt.datetime(exp_year, exp_month, last_day, tzinfo=dt.UTC) + dt.timedelta(days=1)
