"""`banking ledger verify`: prove the ledger's invariants from the tables themselves.

All checks read one snapshot (REPEATABLE READ on PostgreSQL, one read transaction on
SQLite), so they can run while money moves. Each table is read once, streamed in batches
straight from the driver's cursor (values as the driver gives them: no ORM, no type
conversion per value), and the checks run in Python on the way: the cost grows with the
rows, never with their square.
Every check has a name (the `check` of a `Problem`); docs/ledger.md lists each invariant
beside the check that enforces it.

With `since`, only what changed since that time is checked: the entries, idempotency
records and holds created since, and the whole history of each customer account that
has a posting or a hold since (time order, balance chain, months, cached balance, held
amount), so operators can run it every few minutes.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from sqlalchemy import Select, func, or_, select, union
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler

from banking.accounts.models import Account
from banking.core.idempotency import IdempotencyRecord
from banking.ledger.models import EntryKind, EntryStatus, JournalEntry, Posting

_VERIFIED_HELP = "1 if the last `banking ledger verify` in this process found no problem, else 0."
_VERIFIED_AT_HELP = "Unix time at which the last `banking ledger verify` in this process finished."
VERIFIED = Gauge("banking_ledger_verified", _VERIFIED_HELP)
VERIFIED_AT = Gauge("banking_ledger_verified_at_seconds", _VERIFIED_AT_HELP)
# The last result in this process: (1 or 0, unix time), None before the first check.
_last_result: list[float] = []
_BATCH = 20_000
_ENTRY_KINDS = {kind.value for kind in EntryKind}
USER_SCOPE_PREFIX = "user:"
NETWORK_SCOPE_PREFIX = "network:"


_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400}


async def resolve_since(
    session: AsyncSession, text: str, *, now: dt.datetime | None = None
) -> dt.datetime:
    """`--since`: an ISO 8601 time (UTC when it has no zone), a duration back from now
    (`90s`, `15m`, `2h`, `1d`) or a journal entry id (that entry's time). Raises
    ValueError for anything else."""
    text = text.strip()
    unit = _DURATION.get(text[-1:])
    if unit is not None and text[:-1].isdigit():
        return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=int(text[:-1]) * unit)
    try:
        entry_id = uuid.UUID(text)
    except ValueError:
        pass
    else:
        created_at = await session.scalar(
            select(JournalEntry.created_at).where(JournalEntry.id == entry_id)
        )
        await session.rollback()
        if created_at is None:
            raise ValueError(f"no journal entry {text}")
        return created_at
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time, a duration (15m) nor an entry id"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def write_metrics(path: str) -> None:
    """Write the last result's gauges in Prometheus' text format (atomically), for a
    node_exporter textfile collector when verify runs from cron."""
    if not _last_result:
        raise RuntimeError("no ledger check has run in this process")
    registry = CollectorRegistry()
    verified = Gauge("banking_ledger_verified", _VERIFIED_HELP, registry=registry)
    verified_at = Gauge("banking_ledger_verified_at_seconds", _VERIFIED_AT_HELP, registry=registry)
    verified.set(_last_result[0])
    verified_at.set(_last_result[1])
    write_to_textfile(path, registry)


@dataclass(frozen=True, slots=True)
class Problem:
    check: str
    subject: str
    detail: str


@dataclass(slots=True)
class VerifyReport:
    entries: int = 0
    postings: int = 0
    accounts: int = 0
    holds: int = 0
    idempotency_records: int = 0
    since: dt.datetime | None = None
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, check: str, subject: object, detail: str) -> None:
        self.problems.append(Problem(check, str(subject), detail))


@dataclass(slots=True)
class _Account:
    is_internal: bool
    currency: str
    balance_minor: int
    held_minor: int
    outgoing_on: Any
    stamped_at: Any
    postings_total: int = 0
    last_after: int | None = None
    last_at: Any = None
    open_holds_minor: int = 0
    latest_hold_at: Any = None
    months: dict[tuple[int, int], _Month] | None = None


@dataclass(slots=True)
class _Entry:
    status: str
    source_id: Any
    target_id: Any
    amount_minor: int
    currency: str
    idempotency_key: str | None
    initiator_id: Any
    legs: int = 0
    bad_leg: str | None = None


@dataclass(slots=True)
class _Month:
    credits: int = 0
    debits: int = 0
    # The time of the month's last posting in statement order (created_at, then id) and
    # the balance after it.
    last_at: Any = None
    closing: int = 0


class _Scan:
    """Raw reads on the snapshot's connection, and the driver's own value types: ids are
    32-hex text and times naive-UTC text on SQLite (text order is time order, as in the
    statements' own SQL), UUID and aware datetime objects on PostgreSQL."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"

    def rows(self, statement: Select[Any]) -> Iterator[Sequence[Any]]:
        """The statement's rows in batches, through a server-side cursor."""
        dialect = self.connection.dialect
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        assert isinstance(compiled, SQLCompiler)
        assert compiled.positiontup is not None
        values = compiled.construct_params()
        processors: dict[str, Any] = dict(compiled._bind_processors)
        args = []
        for name in compiled.positiontup:
            value = values[name]
            processor = processors.get(name)
            if processor is not None and value is not None:
                value = processor(value)
            elif self.sqlite and isinstance(value, uuid.UUID):
                # An expanded IN list's values have no processor of their own.
                value = value.hex
            args.append(value)
        driver = self.connection.connection.dbapi_connection
        assert driver is not None
        cursor = driver.cursor(server_side=True)
        try:
            cursor.execute(compiled.string, args)
            while batch := cursor.fetchmany(_BATCH):
                yield batch
        finally:
            cursor.close()

    def id_of(self, value: object) -> Any:
        """An id in the driver's form (from a UUID or its text); None if it is not one."""
        try:
            parsed = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
        except ValueError:
            return None
        return parsed.hex if self.sqlite else parsed

    def show(self, value: object) -> str:
        """An id as clients see it."""
        return str(uuid.UUID(value)) if isinstance(value, str) else str(value)

    def time(self, value: Any) -> dt.datetime:
        if isinstance(value, str):
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        moment: dt.datetime = value
        return moment.astimezone(dt.UTC)

    def stamp(self, moment: dt.datetime) -> Any:
        """A time in the driver's form, comparable with the stored ones."""
        if self.sqlite:
            return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment

    def date(self, value: Any) -> dt.date:
        return dt.date.fromisoformat(value) if isinstance(value, str) else value


class _MonthCutter:
    """Which statement month a time falls in (bank time zone), without a zone conversion
    per posting: a posting usually falls in the same month as the one before it."""

    def __init__(self, scan: _Scan, zone: ZoneInfo) -> None:
        self.scan = scan
        self.zone = zone
        self.start: Any = None
        self.end: Any = None
        self.key = (0, 0)

    def month(self, value: Any) -> tuple[int, int]:
        if self.start is None or not self.start <= value < self.end:
            local = self.scan.time(value).astimezone(self.zone)
            self.key = (local.year, local.month)
            start = dt.datetime(local.year, local.month, 1, tzinfo=self.zone)
            end = dt.datetime(
                local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=self.zone
            )
            self.start, self.end = self.scan.stamp(start), self.scan.stamp(end)
        return self.key


def _check_months(report: VerifyReport, subject: str, months: dict[Any, _Month]) -> None:
    """Per month: opening + credits - debits = closing, where the opening is the previous
    month's closing and the closing is the balance after the month's last posting in
    statement order (what statements print)."""
    opening = 0
    for key in sorted(months):
        month = months[key]
        closing = month.closing
        if opening + month.credits - month.debits != closing:
            report.add(
                "month_reconciles",
                subject,
                f"{key[0]:04d}-{key[1]:02d}: opening {opening} + credits {month.credits} "
                f"- debits {month.debits} != closing {closing}",
            )
        opening = closing


async def verify_ledger(
    session: AsyncSession,
    *,
    timezone: str = "UTC",
    since: dt.datetime | None = None,
) -> VerifyReport:
    started = time.perf_counter()
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    report = VerifyReport(since=since)
    connection = await session.connection()
    try:
        await connection.run_sync(
            lambda sync: _verify(_Scan(sync), report, ZoneInfo(timezone), since)
        )
    finally:
        await session.rollback()
    report.seconds = time.perf_counter() - started
    _last_result[:] = [1 if report.ok else 0, time.time()]
    VERIFIED.set(_last_result[0])
    VERIFIED_AT.set(_last_result[1])
    return report


def _touched_query(since: dt.datetime) -> Any:
    """The ids of the customer accounts with a posting or a hold change since `since`."""
    from banking.ledger.models import CardAuthorization

    recent_entries = select(JournalEntry.id).where(JournalEntry.created_at >= since)
    # Customer accounts only: an internal account's postings are checked through their
    # entries (it has no balance chain, and it takes part in a large share of entries).
    posted = (
        select(Posting.account_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.entry_id.in_(recent_entries), Account.is_internal.is_(False))
        .distinct()
    )
    stamped = select(Account.id).where(Account.stamped_at >= since)
    held = (
        select(CardAuthorization.account_id)
        .where(
            CardAuthorization.account_id.is_not(None),
            or_(CardAuthorization.created_at >= since, CardAuthorization.settled_at >= since),
        )
        .distinct()
    )
    return union(posted, stamped, held)


def _verify(scan: _Scan, report: VerifyReport, zone: ZoneInfo, since: dt.datetime | None) -> None:
    from banking.ledger.models import AuthorizationStatus, CardAuthorization

    touched: set[Any] | None = None
    if since is not None:
        touched = set()
        for rows in scan.rows(select(_touched_query(since).subquery())):
            touched.update(row[0] for row in rows)
    show = scan.show

    # 1. Accounts.
    accounts: dict[Any, _Account] = {}
    account_rows: Select[Any] = select(
        Account.id,
        Account.is_internal,
        Account.currency,
        Account.balance_minor,
        Account.held_minor,
        Account.outgoing_on,
        Account.stamped_at,
    )
    for rows in scan.rows(account_rows):
        for account_id, is_internal, currency, balance, held, outgoing_on, stamped_at in rows:
            accounts[account_id] = _Account(
                bool(is_internal), currency, balance, held, outgoing_on, stamped_at
            )
    report.accounts = len(accounts) if touched is None else len(touched)

    # 2. Entries (all, or those created since).
    entries: dict[Any, _Entry] = {}
    entry_rows: Select[Any] = select(
        JournalEntry.id,
        JournalEntry.status,
        JournalEntry.source_account_id,
        JournalEntry.target_account_id,
        JournalEntry.amount_minor,
        JournalEntry.currency,
        JournalEntry.idempotency_key,
        JournalEntry.initiator_id,
    )
    if since is not None:
        entry_rows = entry_rows.where(JournalEntry.created_at >= since)
    statuses = {status.value for status in EntryStatus}
    for rows in scan.rows(entry_rows):
        for entry_id, status, source, target, amount, currency, key, initiator in rows:
            entries[entry_id] = _Entry(status, source, target, amount, currency, key, initiator)
            if status not in statuses:
                report.add("entry_shape", show(entry_id), f"unknown status {status!r}")
    report.entries = len(entries)

    # 3. Postings in id order (a scan of the table, not of an index): per account (time
    # order, balance chain, months, cached balance) and per entry (legs, sums). With
    # `since`: the touched accounts' postings, and the legs of the entries created since.
    postings: Select[Any] = select(
        Posting.id,
        Posting.entry_id,
        Posting.account_id,
        Posting.amount_minor,
        Posting.currency,
        Posting.balance_after_minor,
        Posting.created_at,
    ).order_by(Posting.id)
    if since is not None:
        recent = select(JournalEntry.id).where(JournalEntry.created_at >= since)
        postings = postings.where(
            or_(
                Posting.account_id.in_(select(_touched_query(since).subquery())),
                Posting.entry_id.in_(recent),
            )
        )
    cutter = _MonthCutter(scan, zone)
    sums: dict[Any, int] = {}
    for rows in scan.rows(postings):
        for posting_id, entry_id, account_id, amount, currency, after, created_at in rows:
            report.postings += 1
            entry = entries.get(entry_id)
            if entry is not None:
                entry.legs += 1
                sums[entry_id] = sums.get(entry_id, 0) + amount
                if account_id == entry.source_id:
                    expected: int | None = -entry.amount_minor
                elif account_id == entry.target_id:
                    expected = entry.amount_minor
                else:
                    expected = None
                if expected != amount or currency != entry.currency:
                    entry.bad_leg = (
                        f"posting {posting_id}: {amount} {currency} on {show(account_id)}"
                    )
            account = accounts.get(account_id)
            if account is None:
                report.add("posting_account", f"posting {posting_id}", "unknown account")
                continue
            if currency != account.currency:
                report.add(
                    "posting_currency",
                    f"posting {posting_id}",
                    f"{currency} posting on a {account.currency} account",
                )
            if account.is_internal or (touched is not None and account_id not in touched):
                continue
            account.postings_total += amount
            previous = account.last_after or 0
            if after is None or after != previous + amount:
                report.add(
                    "balance_after_chain",
                    f"posting {posting_id}",
                    f"balance_after {after} != previous {previous} + {amount}",
                )
            if account.last_at is not None and created_at < account.last_at:
                report.add(
                    "posting_time_order",
                    show(account_id),
                    f"posting {posting_id} at {scan.time(created_at).isoformat()} is earlier "
                    f"than the posting before it at {scan.time(account.last_at).isoformat()}",
                )
            else:
                account.last_at = created_at
            account.last_after = after
            if account.months is None:
                account.months = {}
            month = account.months.setdefault(cutter.month(created_at), _Month())
            if amount > 0:
                month.credits += amount
            else:
                month.debits -= amount
            # Postings come in id order: a later one is last unless it is stamped earlier.
            if month.last_at is None or created_at >= month.last_at:
                month.last_at, month.closing = created_at, after or 0
    for account_id, account in accounts.items():
        if account.months is not None:
            _check_months(report, show(account_id), account.months)

    # 4. Entry shape: a posted entry has exactly its two legs (source -amount, target
    # +amount, summing to zero); a declined one has none.
    for entry_id, entry in entries.items():
        if entry.status == EntryStatus.posted.value:
            if entry.legs != 2 or entry.bad_leg is not None:
                report.add(
                    "entry_shape",
                    show(entry_id),
                    f"posted entry has {entry.legs} postings"
                    + (f"; {entry.bad_leg}" if entry.bad_leg else ""),
                )
            if sums.get(entry_id, 0) != 0:
                report.add("entry_balanced", show(entry_id), f"postings sum to {sums[entry_id]}")
        elif entry.status == EntryStatus.declined.value and entry.legs:
            report.add("entry_shape", show(entry_id), f"declined entry has {entry.legs} postings")

    # 5. Holds: every authorization's state is consistent, and per account the held amount
    # equals the open (approved) holds; lapsed, captured, voided or declined ones count
    # for nothing.
    holds: Select[Any] = select(
        CardAuthorization.id,
        CardAuthorization.account_id,
        CardAuthorization.status,
        CardAuthorization.amount_minor,
        CardAuthorization.captured_minor,
        CardAuthorization.capture_entry_id,
        CardAuthorization.idempotency_key,
        CardAuthorization.created_at,
        CardAuthorization.expires_at,
        CardAuthorization.settled_at,
    )
    if since is not None:
        holds = holds.where(
            or_(
                CardAuthorization.account_id.in_(select(_touched_query(since).subquery())),
                CardAuthorization.created_at >= since,
            )
        )
    authorization_keys: dict[Any, str | None] = {}
    for rows in scan.rows(holds):
        for row in rows:
            report.holds += 1
            (hold_id, account_id, status, amount, captured, capture_entry_id, key) = row[:7]
            created_at, expires_at, settled_at = row[7:]
            authorization_keys[hold_id] = key
            problem = _hold_problem(
                status, amount, captured, capture_entry_id, created_at, expires_at, settled_at
            )
            if problem is not None:
                report.add("hold_state", show(hold_id), problem)
            account = accounts.get(account_id) if account_id is not None else None
            if account is None or status == AuthorizationStatus.declined.value:
                # A declined authorization never held anything, nor is it on the clock.
                continue
            if status == AuthorizationStatus.approved.value:
                account.open_holds_minor += amount
            for moment in (created_at, settled_at):
                if moment is not None and (
                    account.latest_hold_at is None or moment > account.latest_hold_at
                ):
                    account.latest_hold_at = moment
            if status == AuthorizationStatus.captured.value and since is None:
                capture = entries.get(capture_entry_id)
                if (
                    capture is None
                    or capture.status != EntryStatus.posted.value
                    or capture.amount_minor != captured
                    or capture.source_id != account_id
                ):
                    report.add(
                        "hold_state", show(hold_id), "captured without its posted capture entry"
                    )

    # Transfers waiting for a four-eyes approval hold their amount too; only a pending
    # one holds anything.
    from banking.approvals.models import Approval, ApprovalStatus

    pending: Select[Any] = select(
        Approval.id, Approval.source_account_id, Approval.status, Approval.held_minor
    ).where(Approval.held_minor != 0)
    for rows in scan.rows(pending):
        for approval_id, account_id, status, held in rows:
            if status != ApprovalStatus.pending_approval.value or held < 0:
                report.add("approval_hold", show(approval_id), f"a {status} approval holds {held}")
            account = accounts.get(account_id)
            if account is not None:
                account.open_holds_minor += held

    # 6. Customer accounts: cached balance, held amount, the account's clock.
    for account_id, account in accounts.items():
        if account.is_internal:
            if account.balance_minor != 0:
                report.add(
                    "internal_cached_balance",
                    show(account_id),
                    f"cached balance {account.balance_minor}",
                )
            continue
        if touched is not None and account_id not in touched:
            continue
        _check_account(report, scan, show(account_id), account, full=since is None)

    # 7. Reversals and refunds: each mirrors its (posted, not itself reversing) original,
    # and the posted ones of an entry never add up to more than it.
    _check_reversals(scan, report, since)

    # 8. Savings interest: interest entries balance against the interest-expense accounts,
    # and each matches its monthly `interest_posting` row.
    _check_interest(scan, report)

    # 9. Idempotency records: a stored answer points at the entry (or authorization) it
    # answered, which carries the same key.
    records: Select[Any] = select(
        IdempotencyRecord.scope,
        IdempotencyRecord.key,
        IdempotencyRecord.response_status,
        IdempotencyRecord.response_body,
    )
    if since is not None:
        records = records.where(IdempotencyRecord.created_at >= since)
    for rows in scan.rows(records):
        for scope, key, status, body in rows:
            report.idempotency_records += 1
            problem = _record_problem(scan, scope, key, status, body, entries, authorization_keys)
            if problem is not None:
                report.add("idempotency_entry", f"{scope} {key}", problem)

    # 8. Scheduled transfers: an occurrence posts at most once, and each posted run names
    # the posted entry of its own try.
    _check_schedule_runs(scan, report, since)
    # 9. Events (the outbox): each movement has its event.
    _check_events(scan, report, since)


SCHEDULE_KEY_PREFIX = "schedule:"


def _check_schedule_runs(scan: _Scan, report: VerifyReport, since: dt.datetime | None) -> None:
    from banking.schedules.models import RunStatus, ScheduledTransferRun

    keys: Select[Any] = select(JournalEntry.idempotency_key).where(
        JournalEntry.status == EntryStatus.posted.value,
        JournalEntry.idempotency_key.like(f"{SCHEDULE_KEY_PREFIX}%"),
    )
    posted: dict[str, int] = {}
    for rows in scan.rows(keys):
        for (key,) in rows:
            # "schedule:<id>:<occurrence>:<attempt>": one posted try per occurrence.
            occurrence = key.rsplit(":", 1)[0]
            posted[occurrence] = posted.get(occurrence, 0) + 1
    for occurrence, count in posted.items():
        if count > 1:
            report.add("schedule_once", occurrence, f"{count} posted entries for one occurrence")
    runs: Select[Any] = (
        select(
            ScheduledTransferRun.schedule_id,
            ScheduledTransferRun.occurrence,
            ScheduledTransferRun.attempt,
            JournalEntry.status,
            JournalEntry.idempotency_key,
        )
        .outerjoin(JournalEntry, JournalEntry.id == ScheduledTransferRun.entry_id)
        .where(ScheduledTransferRun.status == RunStatus.posted.value)
    )
    if since is not None:
        runs = runs.where(ScheduledTransferRun.ran_at >= since)
    for rows in scan.rows(runs):
        for schedule_id, occurrence, attempt, status, key in rows:
            # The key carries the id as text with hyphens (`str(uuid)`), whatever the driver.
            expected = f"{SCHEDULE_KEY_PREFIX}{uuid.UUID(str(schedule_id))}:{occurrence}:{attempt}"
            if status != EntryStatus.posted.value or key != expected:
                report.add(
                    "schedule_once",
                    expected,
                    f"the posted run names a {status or 'missing'} entry with key {key!r}",
                )


def _check_reversals(scan: _Scan, report: VerifyReport, since: dt.datetime | None) -> None:
    from sqlalchemy.orm import aliased

    show = scan.show
    kinds = (EntryKind.reversal.value, EntryKind.card_refund.value)
    orphans: Select[Any] = select(JournalEntry.id).where(
        JournalEntry.kind.in_(kinds), JournalEntry.reversed_entry_id.is_(None)
    )
    if since is not None:
        orphans = orphans.where(JournalEntry.created_at >= since)
    for rows in scan.rows(orphans):
        for (entry_id,) in rows:
            report.add("reversal_shape", show(entry_id), "a reversal without its original")
    reversal = aliased(JournalEntry)
    original = aliased(JournalEntry)
    pairs: Select[Any] = (
        select(
            reversal.id,
            reversal.source_account_id,
            reversal.target_account_id,
            reversal.amount_minor,
            reversal.currency,
            original.id,
            original.status,
            original.kind,
            original.source_account_id,
            original.target_account_id,
            original.amount_minor,
            original.currency,
            original.reversed_entry_id,
        )
        .join(original, original.id == reversal.reversed_entry_id)
        .where(reversal.status == EntryStatus.posted.value)
        .order_by(original.id)
    )
    if since is not None:
        # Every posted reversal of an entry that has one made since (its sum is whole).
        recent = select(JournalEntry.reversed_entry_id).where(
            JournalEntry.created_at >= since, JournalEntry.reversed_entry_id.is_not(None)
        )
        pairs = pairs.where(original.id.in_(recent))
    totals: dict[Any, list[int]] = {}
    for rows in scan.rows(pairs):
        for row in rows:
            entry_id, source, target, amount, currency = row[:5]
            original_id, status, kind, o_source, o_target, o_amount, o_currency, o_link = row[5:]
            if status != EntryStatus.posted.value or kind in kinds or o_link is not None:
                report.add(
                    "reversal_shape",
                    show(entry_id),
                    f"reverses {show(original_id)}, a {status} {kind}",
                )
            elif (source, target, currency) != (o_target, o_source, o_currency):
                report.add(
                    "reversal_shape",
                    show(entry_id),
                    f"does not mirror {show(original_id)} (accounts or currency)",
                )
            total = totals.setdefault(original_id, [0, o_amount])
            total[0] += amount
    for original_id, (reversed_minor, amount) in totals.items():
        if reversed_minor > amount:
            report.add(
                "reversal_sum",
                show(original_id),
                f"reversals add up to {reversed_minor}, more than the entry's {amount}",
            )


def _check_interest(scan: _Scan, report: VerifyReport) -> None:
    from sqlalchemy import func

    from banking.interest.models import InterestPosting
    from banking.ledger import internal

    show = scan.show
    expense_ids = {
        scan.id_of(account_id): currency
        for account_id, (purpose, currency) in internal.INTERNAL_ACCOUNTS.items()
        if purpose is internal.Purpose.interest_expense
    }
    # What the interest-expense accounts paid, per currency, and by which entry kinds
    # (their postings only: the hot settlement accounts are not read again).
    paid: dict[str, int] = {}
    legs: Select[Any] = (
        select(Posting.account_id, JournalEntry.kind, func.sum(Posting.amount_minor))
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(
            Posting.account_id.in_(
                [
                    account_id
                    for account_id, (purpose, _) in internal.INTERNAL_ACCOUNTS.items()
                    if purpose is internal.Purpose.interest_expense
                ]
            )
        )
        .group_by(Posting.account_id, JournalEntry.kind)
    )
    for rows in scan.rows(legs):
        for account_id, kind, total in rows:
            currency = expense_ids[account_id]
            if kind != EntryKind.interest.value:
                report.add("interest_expense", show(account_id), f"a {kind} entry posted on it")
            paid[currency] = paid.get(currency, 0) - int(total)
    # Posted interest entries and the monthly rows naming them.
    entries: dict[Any, tuple[Any, int, str]] = {}
    interest_entries: Select[Any] = select(
        JournalEntry.id,
        JournalEntry.source_account_id,
        JournalEntry.target_account_id,
        JournalEntry.amount_minor,
        JournalEntry.currency,
    ).where(
        JournalEntry.kind == EntryKind.interest.value,
        JournalEntry.status == EntryStatus.posted.value,
    )
    credited: dict[str, int] = {}
    for rows in scan.rows(interest_entries):
        for entry_id, source, target, amount, currency in rows:
            if expense_ids.get(source) != currency:
                report.add("interest_expense", show(entry_id), "interest paid from another account")
            entries[entry_id] = (target, amount, currency)
            credited[currency] = credited.get(currency, 0) + amount
    for currency in sorted(set(paid) | set(credited)):
        if paid.get(currency, 0) != credited.get(currency, 0):
            report.add(
                "interest_expense",
                currency,
                f"interest-expense account paid {paid.get(currency, 0)}, interest entries "
                f"credited {credited.get(currency, 0)}",
            )
    monthly: Select[Any] = select(
        InterestPosting.account_id,
        InterestPosting.month,
        InterestPosting.accrued_micro,
        InterestPosting.carried_in_micro,
        InterestPosting.posted_minor,
        InterestPosting.carried_out_micro,
        InterestPosting.entry_id,
    )
    named: set[Any] = set()
    for rows in scan.rows(monthly):
        for account_id, month, accrued, carried_in, posted, carried_out, entry_id in rows:
            subject = f"{show(account_id)} {month}"
            if carried_out != carried_in + accrued - posted * 1_000_000 or (
                abs(carried_out) > 500_000 and posted > 0
            ):
                report.add(
                    "interest_posting",
                    subject,
                    f"carried {carried_out} != {carried_in} + {accrued} - {posted} x 10^6",
                )
            if posted > 0:
                entry = entries.get(entry_id)
                if entry is None or entry[0] != account_id or entry[1] != posted:
                    report.add(
                        "interest_posting",
                        subject,
                        f"posted {posted} without its posted interest entry",
                    )
                named.add(entry_id)
    for entry_id in entries:
        if entry_id not in named:
            report.add("interest_posting", show(entry_id), "an interest entry without its month")


def _check_events(scan: _Scan, report: VerifyReport, since: dt.datetime | None) -> None:
    """Each posted or declined movement (but a card capture, told by its authorization's
    event) has its `<kind>.posted` / `<kind>.declined` event, which the ledger writes in
    the movement's own transaction. Entries older than the first event (history from
    before the outbox, in a database upgraded to it) are not asked for one."""
    from banking.events.models import Event
    from banking.ledger.service import EVENT_PREFIXES

    first_event = select(func.min(Event.created_at)).scalar_subquery()
    told: set[tuple[str, str]] = set()
    events: Select[Any] = select(Event.subject_id, Event.type).where(
        Event.subject_type == "journal_entry"
    )
    if since is not None:
        events = events.where(Event.created_at >= since)
    for rows in scan.rows(events):
        told.update((subject_id, event_type) for subject_id, event_type in rows)
    entries: Select[Any] = select(JournalEntry.id, JournalEntry.kind, JournalEntry.status).where(
        JournalEntry.kind.in_([kind.value for kind in EVENT_PREFIXES]),
        JournalEntry.created_at >= first_event,
    )
    if since is not None:
        entries = entries.where(JournalEntry.created_at >= since)
    prefixes = {kind.value: prefix for kind, prefix in EVENT_PREFIXES.items()}
    for rows in scan.rows(entries):
        for entry_id, kind, status in rows:
            expected = f"{prefixes[kind]}.{status}"
            if (scan.show(entry_id), expected) not in told:
                report.add("entry_event", scan.show(entry_id), f"no {expected} event")


def _check_account(
    report: VerifyReport, scan: _Scan, subject: str, account: _Account, *, full: bool
) -> None:
    balance, held = account.balance_minor, account.held_minor
    if full and balance != account.postings_total:
        report.add(
            "cached_balance",
            subject,
            f"cached {balance} != sum of postings {account.postings_total}",
        )
    if (account.last_after or 0) != balance:
        report.add(
            "balance_after", subject, f"cached {balance} != last balance_after {account.last_after}"
        )
    if balance < 0:
        report.add("negative_balance", subject, f"balance {balance}")
    if held < 0:
        report.add("negative_hold", subject, f"held {held}")
    elif balance - held < 0:
        report.add("negative_available", subject, f"balance {balance} - held {held} < 0")
    if held != account.open_holds_minor:
        report.add(
            "held_matches_holds", subject, f"held {held} != open holds {account.open_holds_minor}"
        )
    moments = [scan.time(value) for value in (account.last_at, account.latest_hold_at) if value]
    latest = max(moments, default=None)
    stamped = scan.time(account.stamped_at) if account.stamped_at is not None else None
    if latest is not None and (stamped is None or stamped < latest):
        report.add(
            "account_clock",
            subject,
            f"stamped_at {stamped} is before its latest posting or hold at {latest}",
        )
    if account.outgoing_on is not None and (
        stamped is None or scan.date(account.outgoing_on) > stamped.date()
    ):
        report.add(
            "account_clock",
            subject,
            f"the daily counter's day {account.outgoing_on} is after stamped_at {stamped}",
        )


def _hold_problem(
    status: str,
    amount: int,
    captured: int,
    capture_entry_id: uuid.UUID | None,
    created_at: dt.datetime,
    expires_at: dt.datetime | None,
    settled_at: dt.datetime | None,
) -> str | None:
    from banking.ledger.models import AuthorizationStatus

    if status == AuthorizationStatus.declined.value:
        return None if settled_at is None and captured == 0 else "a declined hold was settled"
    if expires_at is None or expires_at <= created_at:
        return f"{status} hold without a lifetime (expires_at {expires_at})"
    if status == AuthorizationStatus.approved.value:
        return None if settled_at is None else "an open hold has a settled_at"
    if settled_at is None or settled_at < created_at:
        return f"{status} hold settled at {settled_at}, before it was made or never"
    if status == AuthorizationStatus.expired.value and settled_at < expires_at:
        return f"expired at {settled_at}, before its expiry {expires_at}"
    if status == AuthorizationStatus.captured.value and (
        capture_entry_id is None or not 0 < captured <= amount
    ):
        return f"captured {captured} of {amount} without a capture entry"
    if status in (AuthorizationStatus.expired.value, AuthorizationStatus.voided.value):
        return None if captured == 0 else f"{status} hold has a captured amount"
    if status != AuthorizationStatus.captured.value:
        return f"unknown status {status!r}"
    return None


def _record_problem(
    scan: _Scan,
    scope: str,
    key: str,
    status: int,
    body: str,
    entries: dict[Any, _Entry],
    authorization_keys: dict[Any, str | None],
) -> str | None:
    """Why the stored answer does not point at what it answered (None when it does)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return "the stored answer is not JSON"
    if not isinstance(answer, dict):
        return None
    entry_ref = answer.get("entry_id") if status >= 400 else None
    if scope.startswith(USER_SCOPE_PREFIX):
        if status < 300 and answer.get("kind") in _ENTRY_KINDS:
            # A movement's answer (deposit, withdrawal, transfer): its id is the entry's.
            entry_ref = answer.get("id")
        if entry_ref is None:
            return None
        entry = entries.get(scan.id_of(entry_ref))
        expected = EntryStatus.posted.value if status < 300 else EntryStatus.declined.value
        if entry is None:
            return f"answer names entry {entry_ref}, which does not exist"
        if entry.idempotency_key != key or entry.status != expected:
            return f"entry {entry_ref} is {entry.status} with key {entry.idempotency_key!r}"
        if entry.initiator_id != scan.id_of(scope.removeprefix(USER_SCOPE_PREFIX)):
            return f"entry {entry_ref} was made by {entry.initiator_id}"
        return None
    if scope.startswith(NETWORK_SCOPE_PREFIX):
        if status < 300 and answer.get("status") == "captured":
            entry_ref = answer.get("capture_entry_id")
        elif status < 300 and answer.get("kind") == EntryKind.card_refund.value:
            entry_ref = answer.get("id")
        if entry_ref is not None:
            entry = entries.get(scan.id_of(entry_ref))
            if entry is None or entry.idempotency_key != key:
                return f"answer names capture entry {entry_ref}, which is not this key's"
        if status < 300 and answer.get("status") in ("approved", "declined"):
            authorization_id = scan.id_of(answer.get("id"))
            if authorization_id not in authorization_keys:
                return f"answer names authorization {answer.get('id')}, which does not exist"
            if authorization_keys[authorization_id] != key:
                return f"authorization {authorization_id} carries another key"
    return None
