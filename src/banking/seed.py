"""`banking seed`: a living bank of demo data, written through the service layer.

`make_plan` draws everything from one `random.Random(seed)`: people, their accounts, and
every movement of the last `months` months (salaries, rent, groceries, restaurants,
utilities, cash withdrawals, savings, and money sent between people). The same seed and
the same `now` give the same plan; `apply` writes it in time order through the identity,
accounts and ledger services, so balances, `balance_after` and declines come out the
same too (only ids, account numbers and password hashes differ between runs).

Movements are dated in the past: the ledger takes the posting time (`now=`), so the
history, daily limits and statements see the activity on the day it is planned for.
Accounts are opened (and backdated) at the start of the period.

Card payments: everyday purchases are planned as `spend` events with a merchant. The
demo member (the first person, whose login `banking seed` prints) has a checking and a
savings account and a virtual card, and pays them by card as a card network would
(authorization, then capture): they show as card payments with the shop's name. Other
people's purchases are posted as withdrawals described with the merchant's name (fast);
a `Spender` passed to `apply` takes every purchase over.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import json
import random
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from banking.accounts import service as accounts
from banking.accounts.models import Account
from banking.accounts.schemas import AccountOpenIn
from banking.cards import service as cards
from banking.cards.schemas import AuthorizationIn, CardIssueIn
from banking.core.db import Database, utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.identity import service as identity
from banking.identity.models import Role, User
from banking.identity.schemas import SignupIn
from banking.ledger import internal
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind
from banking.ledger.writer import close_writer, writer_for

SEED_CLIENT = ClientInfo(ip=None, user_agent="banking seed", request_id=None)
CURRENCY = "USD"
SUPPORT_EMAIL = "support@example.com"
ADMIN_EMAIL = "admin@example.com"
BATCH_SIZE = 200

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Beatriz", "Bruno", "Chen", "Chiara", "Dmitri",
    "Elena", "Emeka", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Isaac", "Jamal",
    "Jonas", "Kai", "Kenji", "Lars", "Leila", "Lucia", "Maya", "Mateo", "Mei", "Nadia",
    "Nikhil", "Noor", "Olivia", "Omar", "Priya", "Rafael", "Rosa", "Sami", "Sofia", "Tariq",
    "Tomas", "Uma", "Valentina", "Wei", "Yara", "Yusuf", "Zara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abebe", "Andersen", "Bauer", "Costa", "Dubois", "Eriksen", "Fernandes", "Garcia",
    "Haddad", "Ito", "Jensen", "Kowalski", "Kim", "Lindqvist", "Moreau", "Nakamura",
    "Novak", "Okafor", "Oliveira", "Patel", "Quinn", "Rossi", "Sato", "Schmidt", "Silva",
    "Tanaka", "Umarov", "Varga", "Weber", "Xu", "Yilmaz", "Zhang",
)  # fmt: skip
EMPLOYERS = (
    "Northwind Traders", "Bluebird Logistics", "Harbor City Hospital", "Lumen Software",
    "Greenfield Schools", "Atlas Engineering", "Cedar Street Bakery", "Riverbank Council",
)  # fmt: skip
LANDLORDS = ("Oakwood Properties", "Maple Court Homes", "Parkside Lettings", "Elm Row Estates")
GROCERS = ("Green Basket", "FreshMart", "Corner Grocery", "Harvest Market", "Daily Pantry")
RESTAURANTS = (
    "Luigi's Trattoria", "Saffron House", "The Noodle Bar", "Blue Door Cafe", "Taqueria Sol",
    "Sushi Kaiten", "The Green Fork",
)  # fmt: skip
UTILITIES = ("City Power & Light", "Metro Water", "Skyline Broadband", "Northern Gas")
SHOPS = ("Page Turner Books", "Urban Outfitters Co", "Hardware Haven", "Pixel Electronics")
GIFTS = ("Dinner", "Concert tickets", "Birthday gift", "Rent share", "Groceries", "Taxi", "Thanks!")
# ISO 18245 merchant category codes of the planned purchases.
MERCHANT_CATEGORIES = {"Groceries": "5411", "Restaurant": "5812", "Shopping": "5311"}
# The person whose login is printed: the demo member.
DEMO_MEMBER = 0

Kind = Literal["deposit", "withdrawal", "spend", "transfer"]
AccountKind = Literal["checking", "savings"]


@dataclass(frozen=True, slots=True)
class PersonPlan:
    index: int
    first_name: str
    last_name: str
    email: str
    date_of_birth: dt.date
    phone: str
    employer: str
    salary_minor: int
    landlord: str
    rent_minor: int
    has_savings: bool


@dataclass(frozen=True, slots=True)
class Event:
    at: dt.datetime
    kind: Kind
    person: int
    account: AccountKind
    amount_minor: int
    description: str
    to_person: int | None = None
    to_account: AccountKind | None = None
    merchant: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    seed: int
    start: dt.datetime
    now: dt.datetime
    people: tuple[PersonPlan, ...]
    events: tuple[Event, ...]


def _months_back(now: dt.datetime, months: int) -> dt.datetime:
    year, month = now.year, now.month - (months - 1)
    while month < 1:
        month += 12
        year -= 1
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def _month_starts(start: dt.datetime, now: dt.datetime) -> list[dt.datetime]:
    starts = []
    current = start
    while current <= now:
        starts.append(current)
        year, month = (
            (current.year + 1, 1) if current.month == 12 else (current.year, current.month + 1)
        )
        current = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    return starts


def _money(rng: random.Random, low: int, high: int, step: int = 1) -> int:
    """A whole number of minor units in [low, high], a multiple of `step`."""
    return rng.randrange(low // step, high // step + 1) * step


def make_plan(*, users: int, months: int, seed: int, now: dt.datetime | None = None) -> Plan:
    """Everything to create, decided up front from `seed` alone (and `now`)."""
    if users < 1 or months < 1:
        raise ValueError("users and months must be at least 1")
    now = (now or utcnow()).astimezone(dt.UTC)
    rng = random.Random(seed)
    people = []
    for index in range(users):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        salary = _money(rng, 2_800_00, 9_500_00, 50_00)
        people.append(
            PersonPlan(
                index=index,
                first_name=first,
                last_name=last,
                email=f"{first}.{last}.{index + 1}@example.com".lower(),
                date_of_birth=dt.date(
                    rng.randint(1955, 2002), rng.randint(1, 12), rng.randint(1, 28)
                ),
                phone=f"+1415555{rng.randint(0, 9999):04d}",
                employer=rng.choice(EMPLOYERS),
                salary_minor=salary,
                landlord=rng.choice(LANDLORDS),
                rent_minor=_money(rng, salary * 25 // 100, salary * 40 // 100, 5_00),
                has_savings=rng.random() < 0.7,
            )
        )
    # The demo member has a savings account whatever the draw (the draw is kept, so the
    # rest of the plan stays the same for a seed).
    people[DEMO_MEMBER] = dataclasses.replace(people[DEMO_MEMBER], has_savings=True)
    start = _months_back(now, months)
    events: list[Event] = []

    def at(month: dt.datetime, day: int, early: int = 7, late: int = 22) -> dt.datetime:
        last_day = calendar.monthrange(month.year, month.month)[1]
        return month.replace(day=min(day, last_day)) + dt.timedelta(
            hours=rng.randint(early, late), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59)
        )

    for person in people:
        # An opening balance, so that the first rent is covered before the first salary.
        events.append(
            Event(
                at(start, 1, 7, 8),
                "deposit",
                person.index,
                "checking",
                person.rent_minor + _money(rng, 500_00, 3_000_00, 10_00),
                "Opening deposit",
            )
        )

        def add(
            when: dt.datetime,
            kind: Kind,
            amount: int,
            text: str,
            *,
            who: int = person.index,
            to_person: int | None = None,
            to_account: AccountKind | None = None,
            merchant: str | None = None,
        ) -> None:
            events.append(
                Event(when, kind, who, "checking", amount, text, to_person, to_account, merchant)
            )

        for month in _month_starts(start, now):
            add(at(month, 1, 8, 10), "withdrawal", person.rent_minor, f"Rent: {person.landlord}")
            add(at(month, 25, 6, 9), "deposit", person.salary_minor, f"Salary: {person.employer}")
            purchases = (
                [(GROCERS, "Groceries", 18_00, 160_00, 7, 22)] * rng.randint(4, 8)
                + [(RESTAURANTS, "Restaurant", 12_00, 95_00, 12, 22)] * rng.randint(1, 5)
                + [(SHOPS, "Shopping", 15_00, 250_00, 9, 20)] * rng.randint(0, 1)
            )
            for names, label, low, high, early, late in purchases:
                shop = rng.choice(names)
                when = at(month, rng.randint(1, 28), early, late)
                add(when, "spend", _money(rng, low, high), f"{label}: {shop}", merchant=shop)
            utility = rng.choice(UTILITIES)
            bill = _money(rng, 45_00, 190_00)
            add(at(month, rng.randint(5, 15)), "withdrawal", bill, f"Bill: {utility}")
            for _ in range(rng.randint(0, 2)):
                cash = _money(rng, 20_00, 200_00, 10_00)
                add(at(month, rng.randint(1, 28)), "withdrawal", cash, "Cash withdrawal")
            if person.has_savings:
                saved = _money(rng, person.salary_minor // 20, person.salary_minor // 7, 10_00)
                when = at(month, 26, 9, 20)
                add(when, "transfer", saved, "Monthly savings", to_person=person.index,
                    to_account="savings")  # fmt: skip
            friends = [p.index for p in people if p.index != person.index]
            for _ in range(rng.randint(0, 3) if friends else 0):
                friend = rng.choice(friends)
                sent = _money(rng, 10_00, 150_00, 50)
                when = at(month, rng.randint(1, 28))
                add(when, "transfer", sent, rng.choice(GIFTS), to_person=friend,
                    to_account="checking")  # fmt: skip
    # In the past only; the same instant keeps its planned order (a stable sort).
    dated = sorted((e for e in events if e.at <= now), key=lambda e: e.at)
    return Plan(seed=seed, start=start, now=now, people=tuple(people), events=tuple(dated))


class Spender(Protocol):
    """Pays a planned purchase (e.g. by card); returns the ledger outcome's status."""

    async def __call__(self, event: Event, account: Account) -> str: ...


@dataclass
class Credentials:
    email: str
    password: str
    role: str


@dataclass
class SeedReport:
    people: int = 0
    accounts: int = 0
    posted: int = 0
    declined: int = 0
    staff: list[Credentials] = field(default_factory=list)
    member_email: str = ""
    member_password: str = ""


def new_password() -> str:
    """A random password that passes the policy (printed once, never stored in clear)."""
    return f"{secrets.token_urlsafe(12)}-{secrets.randbelow(90) + 10}"


async def has_users(db: Database) -> bool:
    async with db.sessionmaker() as session:
        count = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    return bool(count)


async def apply(
    db: Database,
    plan: Plan,
    *,
    member_password: str,
    staff_passwords: Sequence[str] | None = None,
    spender: Spender | None = None,
    advance: Callable[[int], None] | None = None,
) -> SeedReport:
    """Write `plan` through the services; `advance(n)` reports progress in steps
    (one per person, one per movement)."""
    report = SeedReport(member_password=member_password)
    # What the API process does at start-up: the settlement accounts must exist.
    await writer_for(db).run(internal.ensure_internal_accounts)
    try:
        await _apply(db, plan, report, member_password, staff_passwords, spender, advance)
    finally:
        await close_writer(db)
    return report


async def _apply(
    db: Database,
    plan: Plan,
    report: SeedReport,
    member_password: str,
    staff_passwords: Sequence[str] | None,
    spender: Spender | None,
    advance: Callable[[int], None] | None,
) -> None:
    owned: dict[tuple[int, str], Account] = {}
    users: dict[int, uuid.UUID] = {}
    card: cards.IssuedCard | None = None
    async with db.sessionmaker() as session:
        for person in plan.people:
            user = await identity.signup(
                session,
                request=SignupIn(
                    email=person.email,
                    password=member_password,
                    first_name=person.first_name,
                    last_name=person.last_name,
                    date_of_birth=person.date_of_birth,
                    phone=person.phone,
                ),
                client=SEED_CLIENT,
            )
            users[person.index] = user.id
            principal = identity.Principal(
                user_id=user.id, session_id=uuid.uuid4(), role=Role.member
            )
            kinds: list[AccountKind] = (
                ["checking", "savings"] if person.has_savings else ["checking"]
            )
            for kind in kinds:
                account = await accounts.open_account(
                    session,
                    principal=principal,
                    request=AccountOpenIn(type=kind, currency=CURRENCY),
                    client=SEED_CLIENT,
                )
                owned[(person.index, kind)] = account
                report.accounts += 1
            async with write_transaction(session):
                await session.execute(
                    update(Account)
                    .where(Account.id.in_([owned[(person.index, k)].id for k in kinds]))
                    .values(created_at=plan.start)
                )
            if person.index == DEMO_MEMBER and spender is None:
                card = await cards.issue_card(
                    session,
                    principal=principal,
                    account_id=owned[(person.index, "checking")].id,
                    request=CardIssueIn(type="virtual"),
                    settings=db.settings,
                    client=SEED_CLIENT,
                    now=plan.start,
                )
            report.people += 1
            if advance:
                advance(1)
        report.member_email = plan.people[0].email
        passwords = list(staff_passwords or [new_password(), new_password()])
        for (email, role), password in zip(
            ((SUPPORT_EMAIL, Role.support), (ADMIN_EMAIL, Role.admin)), passwords, strict=True
        ):
            await identity.create_user(
                session, email=email, password=password, role=role, client=SEED_CLIENT
            )
            report.staff.append(Credentials(email, password, role.value))
        ids = {key: account.id for key, account in owned.items()}
    # Movements are posted in batches, each batch one write transaction (one commit, one
    # fsync) in which every movement is posted or declined by the ledger exactly as alone.
    batch: list[ledger.Movement] = []
    batch_times: list[dt.datetime] = []

    async def flush() -> None:
        if not batch:
            return
        limits = ledger.Limits.from_settings(db.settings)
        pending = list(zip(batch, batch_times, strict=True))

        def work(connection: Connection) -> list[str]:
            return [
                _status(ledger.post_sync(connection, movement, limits=limits, now=when))
                for movement, when in pending
            ]

        for status in await writer_for(db).run(work):
            report.posted += status == "posted"
            report.declined += status != "posted"
        if advance:
            advance(len(pending))
        batch.clear()
        batch_times.clear()

    for event in plan.events:
        source_id = ids[(event.person, event.account)]
        if event.kind == "spend" and card is not None and event.person == DEMO_MEMBER:
            await flush()
            status = await _pay_by_card(db, card, event)
            report.posted += status == "posted"
            report.declined += status != "posted"
            if advance:
                advance(1)
            continue
        if event.kind == "spend" and spender is not None:
            await flush()
            status = await spender(event, owned[(event.person, event.account)])
            report.posted += status == "posted"
            report.declined += status != "posted"
            if advance:
                advance(1)
            continue
        batch.append(_movement(event, source_id, ids, users[event.person]))
        batch_times.append(event.at)
        if len(batch) >= BATCH_SIZE:
            await flush()
    await flush()


async def _pay_by_card(db: Database, card: cards.IssuedCard, event: Event) -> str:
    """A purchase as the card network sends it: authorize at the till, capture a minute
    later. "posted" when the money was taken, else "declined"."""
    label = event.description.split(":", 1)[0]
    async with db.sessionmaker() as session:
        held = await cards.authorize(
            session,
            request=AuthorizationIn(
                card_number=card.pan,
                exp_month=card.card.exp_month,
                exp_year=card.card.exp_year,
                cvv=card.cvv,
                amount=event.amount_minor,
                currency=CURRENCY,
                merchant_name=event.merchant or event.description,
                merchant_category=MERCHANT_CATEGORIES.get(label, "5999"),
            ),
            idempotency_key=None,
            settings=db.settings,
            client=SEED_CLIENT,
            now=event.at,
        )
        authorization = json.loads(held.body)
        if authorization.get("status") != "approved":
            return "declined"
        captured = await cards.capture(
            session,
            authorization_id=uuid.UUID(authorization["id"]),
            amount_minor=event.amount_minor,
            idempotency_key=None,
            settings=db.settings,
            client=SEED_CLIENT,
            now=event.at + dt.timedelta(minutes=1),
        )
    return "posted" if 200 <= captured.status < 300 else "declined"


def _status(result: ledger.Result) -> str:
    assert result.outcome is not None
    return result.outcome.status.value


def _movement(
    event: Event,
    account_id: uuid.UUID,
    ids: dict[tuple[int, str], uuid.UUID],
    initiator_id: uuid.UUID,
) -> ledger.Movement:
    cash = ledger.cash_account_id(CURRENCY)
    if event.kind == "deposit":
        kind, source, target = EntryKind.deposit, cash, account_id
    elif event.kind in ("withdrawal", "spend"):
        kind, source, target = EntryKind.withdrawal, account_id, cash
    else:
        assert event.to_person is not None
        assert event.to_account is not None
        kind, source, target = (
            EntryKind.transfer,
            account_id,
            ids[(event.to_person, event.to_account)],
        )
    return ledger.Movement(
        kind=kind,
        source_account_id=source,
        target_account_id=target,
        origin_account_id=account_id,
        amount_minor=event.amount_minor,
        currency=CURRENCY,
        description=event.description,
        initiator_id=initiator_id,
        client=SEED_CLIENT,
    )
