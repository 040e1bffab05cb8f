"""The hold rules that need no database: the daily outgoing limit and its counting day."""

from __future__ import annotations

import datetime as dt
import uuid

from banking.ledger import holds
from banking.ledger import service as ledger

TODAY = dt.date(2026, 11, 22)
LIMITS = ledger.Limits(
    max_movement_minor=1_000_00, max_balance_minor=10**9, daily_outgoing_limit_minor=100_00
)


def _account(**changes: object) -> holds.HeldAccount:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "status": "active",
        "currency": "USD",
        "balance_minor": 500_00,
        "held_minor": 0,
        "daily_limit_minor": None,
        "outgoing_on": TODAY,
        "outgoing_minor": 60_00,
        "stamped_at": None,
        **changes,
    }
    return holds.HeldAccount(**values)  # type: ignore[arg-type]


def _check(account: holds.HeldAccount, amount_minor: int) -> str | None:
    refused = holds.check_sync(
        account, amount_minor=amount_minor, currency="USD", limits=LIMITS, today=TODAY
    )
    return None if refused is None else refused.reason


class TestDailyLimit:
    def test_todays_outgoing_plus_the_hold_may_reach_the_limit_not_pass_it(self) -> None:
        assert _check(_account(), 40_00) is None
        assert _check(_account(), 40_01) == "daily_limit_exceeded"

    def test_yesterdays_outgoing_does_not_count(self) -> None:
        yesterday = _account(outgoing_on=TODAY - dt.timedelta(days=1), outgoing_minor=100_00)
        assert _check(yesterday, 100_00) is None

    def test_the_accounts_own_limit_wins(self) -> None:
        assert _check(_account(daily_limit_minor=300_00), 240_00) is None
        assert _check(_account(daily_limit_minor=50_00), 1) == "daily_limit_exceeded"

    def test_insufficient_funds_is_checked_before_the_limit(self) -> None:
        assert _check(_account(balance_minor=10_00), 50_00) == "insufficient_funds"

    def test_a_counter_already_on_the_next_day_is_never_moved_back(self) -> None:
        tomorrow = TODAY + dt.timedelta(days=1)
        account = _account(outgoing_on=tomorrow, outgoing_minor=90_00)
        assert account.counting_day(TODAY) == tomorrow
        assert _check(account, 10_01) == "daily_limit_exceeded"
        assert _account(outgoing_on=None).counting_day(TODAY) == TODAY
