"""A model-based test of the money path: random sequences of requests against the real
service (the real app over HTTP through an in-process ASGI client, the real database),
compared after every step with a plain model written from the rules, not from the code.

The rules the model follows (ARCHITECTURE.md "Money rules", docs/errors.md):
- a deposit credits, a withdrawal debits, a transfer moves from one account to another;
  money leaves only an active account, arrives in any account that is not closed, in its
  own currency, and never takes the available balance (balance - open holds) below zero
  nor a balance above the maximum; one movement is at most the maximum movement;
- a refused movement moves nothing and is recorded as a declined entry of the account it
  was made on, answered with its code; when several rules refuse it, any of their codes;
- a card authorization holds its amount (available drops, balance does not) if it fits;
  a capture debits at most the hold and releases all of it; a void releases it; a hold
  lapses CARD_HOLD_DAYS after it was made, and a lapsed hold holds nothing;
- a request retried with the same Idempotency-Key and body gets the first answer, and
  nothing moves again;
- every posting and hold is stamped with the clock, or with the account's last stamp if
  the clock is behind it (the clock here also moves back);
- a month's statement: opening = the previous month's closing, closing = the balance
  after the month's last posting, credits and debits = its postings.

After every step: each account's balance, available balance, history (amounts, balances
after, times), number of declined entries, each month's statement, and `verify_ledger`.

`make test` runs a bounded number of examples on the database under test (SQLite, or
PostgreSQL with TEST_DATABASE_URL); `make test-long` runs the `long` profile for minutes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from banking.app import create_app
from banking.ledger.verify import verify_ledger
from tests.conftest import TEST_SECRETS, make_settings
from tests.databases import DatabaseFactory
from tests.factories import Member, make_member, make_staff

MAX_MOVEMENT = 2_500
MAX_BALANCE = 20_000
HOLD_DAYS = 7
START = dt.datetime(2025, 1, 27, 9, 0, tzinfo=dt.UTC)
NETWORK = {"X-Network-Key": TEST_SECRETS["card_network_api_key"]}
PROFILES = {
    "ci": {"max_examples": 6, "stateful_step_count": 40},
    "long": {"max_examples": 400, "stateful_step_count": 60},
}
PROFILE = PROFILES[os.environ.get("BANKING_MODEL_PROFILE", "ci")]

# Mostly small amounts (so that money keeps moving), sometimes up to above the maximum.
amounts = st.one_of(st.integers(1, 600), st.integers(1, MAX_MOVEMENT + 300))


@dataclass
class Hold:
    id: str
    account_id: str
    amount: int
    expires_at: dt.datetime


@dataclass
class ModelAccount:
    id: str
    number: str
    owner: int
    currency: str
    status: str = "active"
    balance: int = 0
    # Open holds by authorization id (lapsed ones leave when the service releases them).
    holds: dict[str, Hold] = field(default_factory=dict)
    # Posted lines in order: (time, signed amount, balance after).
    lines: list[tuple[dt.datetime, int, int]] = field(default_factory=list)
    declined: int = 0
    stamped: dt.datetime | None = None

    @property
    def held(self) -> int:
        return sum(hold.amount for hold in self.holds.values())

    @property
    def available(self) -> int:
        return self.balance - self.held

    def stamp(self, now: dt.datetime) -> dt.datetime:
        return now if self.stamped is None or now >= self.stamped else self.stamped


@dataclass
class Sent:
    """A money request already answered, kept to be retried with the same key."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int
    answer: Any


def _month_start(year: int, month: int) -> dt.datetime:
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + month // 12, month % 12 + 1)


class MoneyModel(RuleBasedStateMachine):
    """One bank, two members and an admin, a clock the test moves."""

    database_factory: DatabaseFactory

    accounts = Bundle("accounts")
    cards = Bundle("cards")
    holds = Bundle("holds")
    sent = Bundle("sent")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.url = self.database_factory.new_url()
        app_settings = make_settings(
            self.url,
            max_movement_minor=MAX_MOVEMENT,
            max_balance_minor=MAX_BALANCE,
            card_hold_days=HOLD_DAYS,
            idempotency_ttl_s=3650 * 24 * 3600,
            idempotency_purge_interval_s=0,
        )
        self.app = create_app(app_settings)
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.run(self.lifespan.__aenter__())
        transport = httpx.ASGITransport(app=self.app, client=("203.0.113.9", 51000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        # Sessions are checked against real time: log in before the clock is set.
        self.members: list[Member] = [self.run(make_member(self.http)) for _ in range(2)]
        self.admin = self.run(make_staff(self.http, self.app, "admin"))
        # Lifting a freeze takes a second admin's approval.
        self.checker = self.run(make_staff(self.http, self.app, "admin"))
        self.now = START
        self.app.state.clock = lambda: self.now
        self.model: dict[str, ModelAccount] = {}

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def teardown(self) -> None:
        try:
            self.run(self.http.aclose())
            self.run(self.lifespan.__aexit__(None, None, None))
        finally:
            self.loop.close()
            self.database_factory.drop(self.url)

    # -- requests

    def request(
        self, method: str, path: str, *, member: Member | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**(member.headers if member else {}), **kwargs.pop("headers", {})}
        response: httpx.Response = self.run(
            self.http.request(method, path, headers=headers, **kwargs)
        )
        assert response.status_code < 500, response.text
        return response

    def money(
        self,
        path: str,
        body: dict[str, Any],
        *,
        member: Member | None = None,
        network: bool = False,
    ) -> tuple[httpx.Response, Sent]:
        headers = {**(NETWORK if network else {}), "Idempotency-Key": str(uuid.uuid4())}
        response = self.request("POST", path, member=member, json=body, headers=headers)
        if member is not None:
            headers.update(member.headers)
        return response, Sent("POST", path, body, headers, response.status_code, response.json())

    def expect(self, response: httpx.Response, reasons: set[str]) -> bool:
        """True when the movement posted; else its code is one of the rules that refuse it."""
        if not reasons:
            assert response.status_code in (200, 201), response.text
            return True
        assert response.status_code in (409, 422), response.text
        assert response.json()["code"] in reasons, (response.json()["code"], reasons)
        return False

    def post_lines(self, legs: list[tuple[ModelAccount, int]]) -> dt.datetime:
        """Post one entry's customer legs; their time is the clock, or the latest stamp."""
        moment = self.now
        for account, _ in legs:
            moment = account.stamp(moment)
        for account, amount in legs:
            account.balance += amount
            account.lines.append((moment, amount, account.balance))
            account.stamped = moment
        return moment

    def debit_reasons(self, source: ModelAccount, amount: int) -> set[str]:
        reasons = set()
        if amount > MAX_MOVEMENT:
            reasons.add("amount_too_large")
        if source.status == "closed":
            reasons.add("account_closed")
        if source.status == "frozen":
            reasons.add("account_frozen")
        if amount > source.available:
            reasons.add("insufficient_funds")
        return reasons

    def credit_reasons(self, target: ModelAccount, amount: int) -> set[str]:
        reasons = set()
        if amount > MAX_MOVEMENT:
            reasons.add("amount_too_large")
        if target.status == "closed":
            reasons.add("account_closed")
        if target.balance + amount > MAX_BALANCE:
            reasons.add("balance_limit_exceeded")
        return reasons

    # -- rules

    @initialize(
        target=accounts, funds=st.lists(st.integers(0, 2 * MAX_MOVEMENT), min_size=3, max_size=3)
    )
    def open_funded_accounts(self, funds: list[int]) -> Any:
        """Two accounts of the first member, one of the second, with some money."""
        opened = []
        for owner, amount in zip((0, 0, 1), funds, strict=True):
            account_id = self.open_account(owner, "checking", "USD")
            while amount > 0:
                self.deposit(account_id, min(amount, MAX_MOVEMENT))
                amount -= MAX_MOVEMENT
            opened.append(account_id)
        return multiple(*opened)

    @rule(
        target=accounts,
        owner=st.integers(0, 1),
        kind=st.sampled_from(["checking", "savings"]),
        currency=st.sampled_from(["USD", "USD", "USD", "EUR"]),
    )
    def open_account(self, owner: int, kind: str, currency: str) -> str:
        response = self.request(
            "POST",
            "/v1/accounts",
            member=self.members[owner],
            json={"type": kind, "currency": currency},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        self.model[body["id"]] = ModelAccount(body["id"], body["number"], owner, currency)
        return str(body["id"])

    @rule(target=sent, account_id=accounts, amount=amounts)
    def deposit(self, account_id: str, amount: int) -> Sent:
        account = self.model[account_id]
        response, sent = self.money(
            f"/v1/accounts/{account_id}/deposits",
            {"amount": amount},
            member=self.members[account.owner],
        )
        if self.expect(response, self.credit_reasons(account, amount)):
            moment = self.post_lines([(account, amount)])
            assert dt.datetime.fromisoformat(response.json()["created_at"]) == moment
        else:
            account.declined += 1
        return sent

    @rule(target=sent, account_id=accounts, amount=amounts)
    def withdraw(self, account_id: str, amount: int) -> Sent:
        account = self.model[account_id]
        response, sent = self.money(
            f"/v1/accounts/{account_id}/withdrawals",
            {"amount": amount},
            member=self.members[account.owner],
        )
        if self.expect(response, self.debit_reasons(account, amount)):
            self.post_lines([(account, -amount)])
        else:
            account.declined += 1
        return sent

    @rule(target=sent, source_id=accounts, amount=amounts, by_number=st.booleans(), data=st.data())
    def transfer(
        self, source_id: str, amount: int, by_number: bool, data: st.DataObject
    ) -> Sent | None:
        # Mostly to another account (the member's own or not); now and then to itself.
        others = sorted(key for key in self.model if key != source_id)
        same = not others or data.draw(st.integers(0, 9)) == 0
        target_id = source_id if same else data.draw(st.sampled_from(others))
        source, target = self.model[source_id], self.model[target_id]
        body: dict[str, Any] = {"source_account_id": source_id, "amount": amount}
        if by_number:
            body["target_account_number"] = target.number
        else:
            body["target_account_id"] = target_id
        response, sent = self.money("/v1/transfers", body, member=self.members[source.owner])
        if not by_number and target.owner != source.owner:
            # By id, only the caller's own accounts can be named. Nothing is stored under
            # the key: a retry is a new attempt, not a replay.
            assert response.status_code == 404, response.text
            return None
        reasons = self.debit_reasons(source, amount) | self.credit_reasons(target, amount)
        if source_id == target_id:
            reasons.add("same_account")
        if source.currency != target.currency:
            reasons.add("currency_mismatch")
        if self.expect(response, reasons):
            self.post_lines([(source, -amount), (target, amount)])
        else:
            source.declined += 1
        return sent

    @rule(account_id=accounts, action=st.sampled_from(["freeze", "unfreeze", "close"]))
    def change_status(self, account_id: str, action: str) -> None:
        if action == "close":
            self.close(account_id)
        else:
            self.freeze_or_unfreeze(account_id, action == "freeze")

    def freeze_or_unfreeze(self, account_id: str, frozen: bool) -> None:
        account = self.model[account_id]
        action = "freeze" if frozen else "unfreeze"
        response = self.request(
            "POST", f"/v1/admin/accounts/{account_id}/{action}", member=self.admin
        )
        allowed = (account.status, action) in (("active", "freeze"), ("frozen", "unfreeze"))
        if allowed and not frozen:
            assert response.status_code == 202, response.text
            approval_id = response.json()["id"]
            approved = self.request(
                "POST", f"/v1/approvals/{approval_id}/approve", member=self.checker
            )
            assert approved.json()["status"] == "executed", approved.text
            account.status = "active"
        elif allowed:
            assert response.status_code == 200, response.text
            account.status = "frozen"
        else:
            assert response.status_code == 409, response.text

    def close(self, account_id: str) -> None:
        account = self.model[account_id]
        response = self.request(
            "POST", f"/v1/accounts/{account_id}/close", member=self.members[account.owner]
        )
        if account.status == "closed":
            assert response.status_code == 409, response.text
        elif account.balance == 0 and not account.holds:
            assert response.status_code == 200, response.text
            account.status = "closed"
        else:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "account_not_empty"

    @precondition(lambda self: any(a.status == "active" for a in self.model.values()))
    @rule(target=cards, data=st.data())
    def issue_card(self, data: st.DataObject) -> dict[str, Any]:
        active = sorted(key for key, account in self.model.items() if account.status == "active")
        account_id = data.draw(st.sampled_from(active))
        account = self.model[account_id]
        response = self.request(
            "POST",
            f"/v1/accounts/{account_id}/cards",
            member=self.members[account.owner],
            json={"type": "virtual"},
        )
        assert response.status_code == 201, response.text
        return {"account_id": account_id, **response.json()}

    @rule(target=holds, card=cards, amount=amounts)
    def authorize(self, card: dict[str, Any], amount: int) -> str:
        account = self.model[card["account_id"]]
        body = {
            "card_number": card["pan"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "cvv": card["cvv"],
            "amount": amount,
            "currency": account.currency,
            "merchant_name": "Corner Bookshop",
            "merchant_category": "5942",
        }
        response, _ = self.money("/v1/card-authorizations", body, network=True)
        assert response.status_code == 201, response.text
        answer = response.json()
        reasons = self.debit_reasons(account, amount)
        if account.status == "closed":
            # A closed account's cards may be refused as cancelled first.
            reasons |= {"card_cancelled", "card_frozen"}
        if not reasons:
            assert answer["status"] == "approved", answer
            moment = account.stamp(self.now)
            account.stamped = moment
            assert dt.datetime.fromisoformat(answer["created_at"]) == moment
            account.holds[answer["id"]] = Hold(
                answer["id"], account.id, amount, moment + dt.timedelta(days=HOLD_DAYS)
            )
        else:
            assert answer["status"] == "declined", answer
            assert answer["decline_reason"] in reasons, (answer["decline_reason"], reasons)
        return str(answer["id"])

    @rule(target=sent, authorization_id=consumes(holds), part=st.floats(0.01, 1.0))
    def capture(self, authorization_id: str, part: float) -> Sent | None:
        hold = self._hold(authorization_id)
        amount = max(1, int(hold.amount * part)) if hold else 1
        response, sent = self.money(
            f"/v1/card-authorizations/{authorization_id}/capture",
            {"amount": amount},
            network=True,
        )
        if hold is None:
            # Declined, captured, voided or lapsed: nothing to capture.
            assert response.status_code in (404, 409, 410, 422), response.text
            return None
        account = self.model[hold.account_id]
        reasons = set()
        if account.status == "closed":
            reasons.add("account_closed")
        if account.status == "frozen":
            reasons.add("account_frozen")
        if self.expect(response, reasons):
            del account.holds[authorization_id]
            moment = self.post_lines([(account, -amount)])
            assert dt.datetime.fromisoformat(response.json()["settled_at"]) == moment
            return sent
        account.declined += 1
        return sent

    @rule(authorization_id=consumes(holds))
    def void(self, authorization_id: str) -> None:
        hold = self._hold(authorization_id)
        response = self.request(
            "POST", f"/v1/card-authorizations/{authorization_id}/void", headers=NETWORK
        )
        if hold is None:
            assert response.status_code in (404, 409, 410), response.text
            return
        assert response.status_code == 200, response.text
        account = self.model[hold.account_id]
        del account.holds[authorization_id]
        account.stamped = account.stamp(self.now)

    @rule(earlier=sent)
    def retry(self, earlier: Sent | None) -> None:
        if earlier is None:
            return
        response = self.request(
            earlier.method, earlier.path, json=earlier.body, headers=earlier.headers
        )
        assert response.status_code == earlier.status, response.text
        assert response.json() == earlier.answer
        if earlier.status in (200, 201) or "entry_id" in earlier.answer:
            assert response.headers.get("idempotent-replayed") == "true"

    @rule(
        minutes=st.one_of(
            st.integers(1, 90),
            st.integers(60, 24 * 60),
            st.integers(24 * 60, 40 * 24 * 60),
            # Now and then the clock steps back (another host, an NTP step).
            st.integers(-180, -1),
        )
    )
    def move_clock(self, minutes: int) -> None:
        self.now += dt.timedelta(minutes=minutes)

    def _hold(self, authorization_id: str) -> Hold | None:
        for account in self.model.values():
            hold = account.holds.get(authorization_id)
            if hold is not None and hold.expires_at > self.now:
                return hold
        return None

    # -- the comparison after every step

    @invariant()
    def the_service_agrees_with_the_model(self) -> None:
        for account in self.model.values():
            self._compare(account)
        self._verify()

    def _compare(self, account: ModelAccount) -> None:
        member = self.members[account.owner]
        balance = self.request("GET", f"/v1/accounts/{account.id}/balance", member=member)
        assert balance.status_code == 200, balance.text
        # The read released the holds that lapsed by now, stamped at their release.
        for hold_id, hold in list(account.holds.items()):
            if hold.expires_at <= self.now:
                del account.holds[hold_id]
                account.stamped = account.stamp(self.now)
        body = balance.json()
        assert (body["balance"], body["available_balance"]) == (
            account.balance,
            account.available,
        ), account
        history = self.request(
            "GET", f"/v1/accounts/{account.id}/transactions?limit=200", member=member
        ).json()["items"]
        seen = [
            (dt.datetime.fromisoformat(item["created_at"]), item["amount"], item["balance_after"])
            for item in reversed(history)
        ]
        assert seen == account.lines
        declined = self.request(
            "GET",
            f"/v1/accounts/{account.id}/transactions?limit=200&status=declined",
            member=member,
        ).json()["items"]
        assert len(declined) == account.declined
        for month in self._months(account):
            self._compare_statement(account, member, *month)

    def _months(self, account: ModelAccount) -> list[tuple[int, int]]:
        """Every month from the first posting's to the clock's (later ones are future)."""
        if not account.lines:
            return []
        first = account.lines[0][0]
        month = (first.year, first.month)
        last = (self.now.year, self.now.month)
        months = []
        while month <= last:
            months.append(month)
            month = _next_month(*month)
        return months

    def _compare_statement(
        self, account: ModelAccount, member: Member, year: int, month: int
    ) -> None:
        start = _month_start(year, month)
        end = _month_start(*_next_month(year, month))

        def closing_before(boundary: dt.datetime) -> int:
            before = [after for moment, _, after in account.lines if moment < boundary]
            return before[-1] if before else 0

        inside = [amount for moment, amount, _ in account.lines if start <= moment < end]
        response = self.request(
            "GET", f"/v1/accounts/{account.id}/statements/{year:04d}-{month:02d}", member=member
        )
        assert response.status_code == 200, response.text
        statement = response.json()
        expected = {
            "opening_balance": closing_before(start),
            "closing_balance": closing_before(end),
            "total_credits": sum(amount for amount in inside if amount > 0),
            "total_debits": -sum(amount for amount in inside if amount < 0),
        }
        assert {name: statement[name] for name in expected} == expected, (year, month)
        assert (
            expected["opening_balance"] + expected["total_credits"] - expected["total_debits"]
            == expected["closing_balance"]
        )

    def _verify(self) -> None:
        async def check() -> Any:
            async with self.app.state.db.sessionmaker() as session:
                return await verify_ledger(session)

        report = self.run(check())
        assert report.ok, report.problems


# Shrinking a failure to its shortest sequence takes longer than a run.
@pytest.mark.timeout(1200)
def test_the_money_path_agrees_with_its_model(database_factory: DatabaseFactory) -> None:
    MoneyModel.database_factory = database_factory
    run_state_machine_as_test(
        MoneyModel,
        settings=settings(
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            **PROFILE,
        ),
    )
