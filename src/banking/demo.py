"""`banking demo`: the whole customer flow against a running server, step by step.

Each step calls the public API through `banking.client`, checks the answer and prints it
under a ticked heading as a Rich table, money formatted and coloured, ids only with
`--verbose` (or, with `--json`, one JSON document at the end with every column). A recap
and the web login close the run. Any unexpected answer stops the demo with a non-zero
exit status and the server's problem detail.
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
from rich.text import Text

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
# The steps, in order: (name for --until, title). `banking demo --help` lists them.
STEPS: tuple[tuple[str, str], ...] = (
    ("health", "Server is ready"),
    ("sign-up", "Sign up two people"),
    ("log-in", "Log in"),
    ("open-accounts", "Open accounts"),
    ("deposit", "Deposit a salary"),
    ("own-transfer", "Move money to savings"),
    ("send-money", "Send money to Grace by account number"),
    ("retry", "Retry the same transfer (same Idempotency-Key)"),
    ("overdraft", "An overdraft is declined"),
    ("balances", "Balances"),
    ("card", "Issue a card, authorize and capture a payment"),
    ("statement", "Statement for this month"),
    ("payee", "Save Grace as a payee and pay her"),
    ("standing-order", "A monthly standing order"),
    ("batch", "Three transfers in one batch"),
)
# Columns holding ids: printed only with --verbose (always in --json).
ID_COLUMNS = frozenset({"user id", "entry", "transfer", "idempotency key", "order id"})
# Columns holding money, coloured by sign.
MONEY_COLUMNS = frozenset(
    {
        "balance",
        "available",
        "amount",
        "deposited",
        "opening",
        "credits",
        "debits",
        "closing",
        "paid",
    }
)
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
        runs = {
            "health": self.health,
            "sign-up": self.sign_up,
            "log-in": self.log_in,
            "open-accounts": self.open_accounts,
            "deposit": self.deposit,
            "own-transfer": self.own_transfer,
            "send-money": self.send_money,
            "retry": self.retry,
            "overdraft": self.overdraft,
            "balances": self.balances,
            "card": self.card_payment,
            "statement": self.statement,
            "payee": self.payee,
            "standing-order": self.standing_order,
            "batch": self.batch,
        }
        self.steps = [
            Step(name, f"Statement for {self.month}" if name == "statement" else title, runs[name])
            for name, title in STEPS
        ]
        self.payee_id: str | None = None

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

    def payee(self) -> StepResult:
        return payee_step(self)

    def standing_order(self) -> StepResult:
        return standing_order_step(self)

    def batch(self) -> StepResult:
        return batch_step(self)


def payee_step(demo: Demo) -> StepResult:
    """Ada saves Grace's account as a payee (the holder's name comes back masked), then
    pays her by payee id."""
    ada, target = demo.ada, demo.grace.accounts["checking"]
    payee = ada.client.add_payee("Grace", target.number, nickname="Dinner club")
    demo.payee_id = payee.id
    moved = ada.client.transfer(
        ada.accounts["checking"].id, 20_00, payee_id=payee.id, description="Tickets"
    )
    expect(moved.status == "posted", f"the transfer to the payee is {moved.status}")
    return StepResult(
        ["payee", "holder", "number", "paid", "transfer"],
        [
            [
                payee.name,
                payee.holder_name,
                payee.account_number,
                format_minor(20_00, "USD"),
                moved.id,
            ]
        ],
        note="A new payee: transfers above the new-payee limit wait for the cooldown.",
    )


def standing_order_step(demo: Demo) -> StepResult:
    """A monthly standing order to the payee for a year, first run tomorrow."""
    assert demo.payee_id is not None
    first = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    order = demo.ada.client.schedule_transfer(
        demo.ada.accounts["checking"].id,
        15_00,
        first_run_at=first,
        frequency="monthly",
        count=12,
        payee_id=demo.payee_id,
        description="Club fee",
    )
    expect(order.status == "active", f"the standing order is {order.status}")
    expect(order.next_run_at == first, "the first run is not the one asked for")
    return StepResult(
        ["order", "amount", "frequency", "next run", "status", "order id"],
        [
            [
                "Club fee",
                format_minor(15_00, "USD"),
                "monthly x 12",
                first.isoformat(),
                order.status,
                order.id,
            ]
        ],
        note="The scheduler runs each occurrence once; a declined one is retried.",
    )


def batch_step(demo: Demo) -> StepResult:
    """Three transfers in one all_or_nothing batch under one Idempotency-Key."""
    ada = demo.ada
    source = ada.accounts["checking"]
    items: list[dict[str, Any]] = [
        {
            "source_account_id": source.id,
            "target_account_id": ada.accounts["savings"].id,
            "amount": 10_00,
            "description": "Savings",
        },
        {
            "source_account_id": source.id,
            "payee_id": demo.payee_id,
            "amount": 5_00,
            "description": "Snacks",
        },
        {
            "source_account_id": source.id,
            "target_account_number": demo.grace.accounts["checking"].number,
            "amount": 2_50,
            "description": "Coffee",
        },
    ]
    batch = ada.client.transfer_batch(items, mode="all_or_nothing")
    expect(batch.posted == 3, f"{batch.posted} of 3 batch items posted")
    return StepResult(
        ["item", "status", "amount", "transfer"],
        [
            [
                item["index"],
                item["status"],
                format_minor(items[item["index"]]["amount"], "USD"),
                (item.get("transfer") or {}).get("id", ""),
            ]
            for item in batch.items
        ],
        note="One batch, one database transaction: all three posted together.",
    )


def _cell(column: str, value: Any) -> Text | str:
    """Money in green, or red when negative; anything else as it is."""
    text = str(value)
    if column in MONEY_COLUMNS and (text[:1].isdigit() or text.startswith("-")):
        return Text(text, style="bold red" if text.startswith("-") else "bold green")
    return text


def _table(result: StepResult, *, verbose: bool) -> Table:
    shown = [i for i, name in enumerate(result.columns) if verbose or name not in ID_COLUMNS]
    table = Table(show_edge=False, header_style="bold")
    for index in shown:
        name = result.columns[index]
        table.add_column(name, justify="right" if name in MONEY_COLUMNS else "left")
    for row in result.rows:
        table.add_row(*(_cell(result.columns[i], row[i]) for i in shown))
    return table


def _recap(console: Console, demo: Demo, base_url: str, passed: int, total: int) -> None:
    console.rule("[bold]Recap")
    console.print(f"[green]✓[/] {passed} of {total} steps answered as expected.")
    for someone in (demo.ada, demo.grace):
        if not someone.accounts:
            continue
        parts = []
        for kind, account in someone.accounts.items():
            try:
                balance = someone.client.balance(account.id)
            except (BankingError, httpx.HTTPError):
                continue
            parts.append(f"{kind} [bold green]{format_minor(balance.balance, balance.currency)}[/]")
        console.print(f"  {someone.first_name} {someone.last_name}: " + " · ".join(parts))
    if demo.first_transfer is not None:
        console.print("  One transfer sent twice with the same Idempotency-Key moved money once.")
    if demo.ada.user_id:
        console.print()
        console.print(
            f"[bold]See it in the web bank:[/] {base_url.rstrip('/')}/  — log in as "
            f"[cyan]{demo.ada.email}[/] with the password [cyan]{DEMO_PASSWORD}[/]",
            soft_wrap=True,  # an address must stay whole to be copied
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
    verbose: bool = False,
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
                    console.print()
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
                console.print()
                console.print(f"[bold green]✓[/] [bold]{number}. {step.title}[/]")
                console.print(_table(result, verbose=verbose))
                if result.note:
                    console.print(f"  [green]{result.note}[/]")
            if step.name == until:
                break
        if not as_json:
            console.print()
            passed = sum(1 for item in report if item["ok"])
            _recap(console, demo, base_url, passed, len(demo.steps))
    finally:
        demo.close()
    if as_json:
        document = {"ok": ok, "base_url": base_url, "steps": report}
        console.out(json.dumps(document, indent=2), highlight=False)
    elif ok:
        console.print("[bold green]demo finished: every step answered as expected[/]")
    return 0 if ok else 1
