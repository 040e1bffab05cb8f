"""`banking demo`: the whole customer flow against a running server, step by step.

Each step calls the public API through `banking.client`, checks the answer and prints it
as a Rich table (or, with `--json`, one JSON document at the end). Any unexpected answer
stops the demo with a non-zero exit status and the server's problem detail.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from banking.client import (
    Account,
    ApiError,
    BankingClient,
    BankingError,
    InsufficientFunds,
    IssuedCard,
    Movement,
)

DEMO_PASSWORD = "Demo-Lantern-Harbour-2024"
# Minor-unit exponents for the currencies the demo may meet (ISO 4217).
EXPONENTS = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}


def format_minor(amount: int, currency: str) -> str:
    """12345, "USD" → "123.45 USD", exactly (integer arithmetic only)."""
    digits = EXPONENTS.get(currency.upper(), 2)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**digits)
    text = f"{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    return f"{sign}{text} {currency.upper()}"


class StepFailed(Exception):
    """An answer the demo did not expect."""


@dataclass
class StepResult:
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    note: str = ""


@dataclass
class Person:
    first_name: str
    last_name: str
    email: str
    client: BankingClient
    user_id: str = ""
    accounts: dict[str, Account] = field(default_factory=dict)


@dataclass
class Step:
    name: str
    title: str
    run: Callable[[], StepResult]


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


class Demo:
    """The flow, as named steps sharing the state they build up."""

    def __init__(
        self,
        base_url: str,
        *,
        network_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        suffix = uuid.uuid4().hex[:8]

        def person(first: str, last: str) -> Person:
            client = BankingClient(base_url, network_key=network_key, transport=transport)
            return Person(first, last, f"{first.lower()}.{suffix}@example.com", client)

        self.ada = person("Ada", "Lovelace")
        self.grace = person("Grace", "Hopper")
        self.transfer_key = str(uuid.uuid4())
        self.first_transfer: Movement | None = None
        self.card: IssuedCard | None = None
        self.month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
        self.steps = [
            Step("health", "Server is ready", self.health),
            Step("sign-up", "Sign up two people", self.sign_up),
            Step("log-in", "Log in", self.log_in),
            Step("open-accounts", "Open accounts", self.open_accounts),
            Step("deposit", "Deposit a salary", self.deposit),
            Step("own-transfer", "Move money to savings", self.own_transfer),
            Step("send-money", "Send money to Grace by account number", self.send_money),
            Step("retry", "Retry the same transfer (same Idempotency-Key)", self.retry),
            Step("overdraft", "An overdraft is declined", self.overdraft),
            Step("balances", "Balances", self.balances),
            # The card and statement steps need the cards and statements APIs.
            Step("card", "Issue a card, authorize and capture a payment", self.card_payment),
            Step("statement", f"Statement for {self.month}", self.statement),
        ]

    def close(self) -> None:
        self.ada.client.close()
        self.grace.client.close()

    # -- steps

    def health(self) -> StepResult:
        report = self.ada.client.health()
        expect(report.get("status") == "ok", f"server not ready: {report}")
        checks = report.get("checks") or {}
        return StepResult(["check", "status"], [[name, state] for name, state in checks.items()])

    def sign_up(self) -> StepResult:
        rows = []
        for someone, born in ((self.ada, "1990-12-10"), (self.grace, "1986-12-09")):
            user = someone.client.signup(
                someone.email,
                DEMO_PASSWORD,
                first_name=someone.first_name,
                last_name=someone.last_name,
                date_of_birth=born,
            )
            expect(user.email == someone.email, "signup answered with another email")
            expect(user.role == "member", f"a new user should be a member, not {user.role}")
            someone.user_id = user.id
            rows.append(
                [f"{someone.first_name} {someone.last_name}", user.email, user.role, user.id]
            )
        return StepResult(["person", "email", "role", "user id"], rows)

    def log_in(self) -> StepResult:
        rows = []
        for someone in (self.ada, self.grace):
            tokens = someone.client.login(someone.email, DEMO_PASSWORD)
            sessions = someone.client.sessions()
            expect(len(sessions) == 1, f"expected one session, found {len(sessions)}")
            expect(sessions[0].current, "the new session should be the current one")
            rows.append(
                [someone.first_name, tokens.token_type, f"{tokens.expires_in} s", len(sessions)]
            )
        return StepResult(["person", "token", "expires in", "sessions"], rows)

    def open_accounts(self) -> StepResult:
        plan = [(self.ada, "checking"), (self.ada, "savings"), (self.grace, "checking")]
        rows = []
        for someone, kind in plan:
            account = someone.client.open_account(kind, "USD")  # type: ignore[arg-type]
            expect(account.type == kind, f"asked for {kind}, got {account.type}")
            expect(account.balance == 0, "a new account should be empty")
            someone.accounts[kind] = account
            rows.append(
                [
                    someone.first_name,
                    kind,
                    account.number,
                    account.currency,
                    account.status,
                    format_minor(account.balance, account.currency),
                ]
            )
        return StepResult(["owner", "type", "number", "currency", "status", "balance"], rows)

    def deposit(self) -> StepResult:
        checking = self.ada.accounts["checking"]
        entry = self.ada.client.deposit(checking.id, 1_000_00, description="Salary")
        balance = self.ada.client.balance(checking.id)
        expect(balance.balance == 1_000_00, f"balance after deposit is {balance.balance}")
        return StepResult(
            ["account", "deposited", "balance", "entry"],
            [
                [
                    checking.number,
                    format_minor(1_000_00, "USD"),
                    format_minor(balance.balance, balance.currency),
                    entry.id,
                ]
            ],
        )

    def own_transfer(self) -> StepResult:
        source, target = self.ada.accounts["checking"], self.ada.accounts["savings"]
        moved = self.ada.client.transfer(
            source.id, 250_00, target_account_id=target.id, description="Savings"
        )
        return StepResult(
            ["from", "to", "amount", "transfer"],
            [[source.number, target.number, format_minor(250_00, "USD"), moved.id]],
        )

    def send_money(self) -> StepResult:
        source, target = self.ada.accounts["checking"], self.grace.accounts["checking"]
        payee = self.ada.client.lookup_account(target.number)
        expect(payee.currency == "USD", f"payee account is in {payee.currency}")
        moved = self.ada.client.transfer(
            source.id,
            75_00,
            target_account_number=target.number,
            description="Dinner",
            idempotency_key=self.transfer_key,
        )
        expect(not moved.replayed, "a first transfer must not be a replay")
        self.first_transfer = moved
        return StepResult(
            ["payee", "number", "amount", "transfer", "idempotency key"],
            [
                [
                    payee.holder_name,
                    target.number,
                    format_minor(75_00, "USD"),
                    moved.id,
                    self.transfer_key,
                ]
            ],
        )

    def retry(self) -> StepResult:
        assert self.first_transfer is not None
        source, target = self.ada.accounts["checking"], self.grace.accounts["checking"]
        again = self.ada.client.transfer(
            source.id,
            75_00,
            target_account_number=target.number,
            description="Dinner",
            idempotency_key=self.transfer_key,
        )
        expect(again.replayed, "the retry should be answered as a replay")
        expect(again.id == self.first_transfer.id, "the retry created a second transfer")
        return StepResult(
            ["transfer", "replayed", "same transfer"],
            [[again.id, "yes", "yes"]],
            note="The server replayed the first answer; no money moved twice.",
        )

    def overdraft(self) -> StepResult:
        savings = self.ada.accounts["savings"]
        try:
            self.ada.client.withdraw(savings.id, 1_000_000_00, description="Too much")
        except InsufficientFunds as declined:
            recorded = self.ada.client.transactions_page(savings.id, status="declined")
            expect(
                any(item.decline_reason == "insufficient_funds" for item in recorded.items),
                "the declined withdrawal is not in the account's declined history",
            )
            return StepResult(
                ["account", "amount", "status", "code", "detail"],
                [
                    [
                        savings.number,
                        format_minor(1_000_000_00, "USD"),
                        declined.status,
                        declined.code,
                        declined.detail,
                    ]
                ],
            )
        raise StepFailed("a withdrawal beyond the balance was accepted")

    def card_payment(self) -> StepResult:
        checking = self.ada.accounts["checking"]
        card = self.ada.client.issue_card(checking.id, "virtual")
        self.card = card
        held = self.ada.client.authorize_card(
            card_number=card.pan,
            exp_month=card.card.exp_month,
            exp_year=card.card.exp_year,
            cvv=card.cvv,
            amount=42_50,
            currency="USD",
            merchant_name="Corner Bookshop",
            merchant_category="5942",
        )
        expect(held.status == "approved", f"authorization {held.status}: {held.decline_reason}")
        available = self.ada.client.balance(checking.id)
        expect(
            available.balance - available.available_balance == 42_50,
            "the authorization should hold 42.50 of the available balance",
        )
        captured = self.ada.client.capture_authorization(held.id, 42_50)
        after = self.ada.client.balance(checking.id, verify=True)
        expected = 1_000_00 - 250_00 - 75_00 - 42_50
        expect(after.balance == expected, f"balance after capture {after.balance} != {expected}")
        expect(after.available_balance == expected, "the capture should release the hold")
        expect(after.consistent is not False, "cached balance differs from the postings")
        return StepResult(
            ["card", "merchant", "amount", "authorization", "after capture", "balance"],
            [
                [
                    f"•••• {card.card.last4}",
                    "Corner Bookshop",
                    format_minor(42_50, "USD"),
                    held.status,
                    captured.status,
                    format_minor(after.balance, after.currency),
                ]
            ],
        )

    def balances(self) -> StepResult:
        # A list, not a dict: people are mutable dataclasses, so not hashable.
        expected = [
            (self.ada, "checking", 1_000_00 - 250_00 - 75_00),
            (self.ada, "savings", 250_00),
            (self.grace, "checking", 75_00),
        ]
        rows = []
        for someone, kind, amount in expected:
            account = someone.accounts[kind]
            balance = someone.client.balance(account.id, verify=True)
            expect(
                balance.balance == amount,
                f"{someone.first_name}'s {kind}: {balance.balance}, expected {amount}",
            )
            expect(balance.consistent is not False, "cached balance differs from the postings")
            rows.append(
                [
                    someone.first_name,
                    kind,
                    account.number,
                    format_minor(balance.balance, balance.currency),
                    format_minor(balance.available_balance, balance.currency),
                ]
            )
        return StepResult(["owner", "type", "number", "balance", "available"], rows)

    def statement(self) -> StepResult:
        checking = self.ada.accounts["checking"]
        statement = self.ada.client.statement(checking.id, self.month)
        expect(
            statement.opening_balance + statement.total_credits - statement.total_debits
            == statement.closing_balance,
            "opening + credits - debits does not equal closing",
        )
        money = [
            statement.opening_balance,
            statement.total_credits,
            statement.total_debits,
            statement.closing_balance,
        ]
        return StepResult(
            ["opening", "credits", "debits", "closing", "lines"],
            [[*(format_minor(value, "USD") for value in money), len(statement.lines)]],
        )


def _describe(error: Exception) -> dict[str, Any]:
    if isinstance(error, ApiError):
        return {
            "status": error.status,
            "code": error.code,
            "detail": error.detail,
            "request_id": error.request_id,
            "errors": [e.field for e in error.errors],
        }
    if isinstance(error, httpx.HTTPError):
        return {"code": "network_error", "detail": f"{type(error).__name__}: {error}"}
    return {"code": "unexpected", "detail": str(error)}


def run(
    base_url: str,
    *,
    as_json: bool = False,
    until: str | None = None,
    network_key: str | None = None,
    console: Console | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run the demo; the exit status is 0 only when every step went as expected."""
    console = console or Console()
    demo = Demo(base_url, network_key=network_key, transport=transport)
    names = [step.name for step in demo.steps]
    if until is not None and until not in names:
        demo.close()
        raise ValueError(f"unknown step {until!r}; steps: {', '.join(names)}")
    report: list[dict[str, Any]] = []
    ok = True
    try:
        for number, step in enumerate(demo.steps, start=1):
            try:
                result = step.run()
            except (StepFailed, BankingError, httpx.HTTPError) as error:
                ok = False
                problem = _describe(error)
                report.append({"step": step.name, "title": step.title, "ok": False, **problem})
                if not as_json:
                    console.print(f"[bold red]✗ {number}. {step.title}[/]: {problem['detail']}")
                    if problem.get("request_id"):
                        console.print(
                            f"  request id {problem['request_id']}, code {problem['code']}"
                        )
                break
            report.append(
                {
                    "step": step.name,
                    "title": step.title,
                    "ok": True,
                    "rows": [
                        dict(zip(result.columns, map(str, row), strict=True)) for row in result.rows
                    ],
                }
            )
            if not as_json:
                table = Table(title=f"{number}. {step.title}", title_justify="left")
                for column in result.columns:
                    table.add_column(column)
                for row in result.rows:
                    table.add_row(*(str(cell) for cell in row))
                console.print(table)
                if result.note:
                    console.print(f"[green]{result.note}[/]")
            if step.name == until:
                break
    finally:
        demo.close()
    if as_json:
        document = {"ok": ok, "base_url": base_url, "steps": report}
        console.out(json.dumps(document, indent=2), highlight=False)
    elif ok:
        console.print("[bold green]demo finished: every step answered as expected[/]")
    return 0 if ok else 1
