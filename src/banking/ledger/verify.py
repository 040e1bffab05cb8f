"""`banking ledger verify`: prove the ledger's invariants from the tables themselves.

All checks read one snapshot (REPEATABLE READ on PostgreSQL, one read transaction on
SQLite), so they can run while money moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts.models import Account
from banking.ledger.models import EntryStatus, JournalEntry, Posting


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
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_ledger(session: AsyncSession) -> VerifyReport:
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    report = VerifyReport()
    counts = (
        await session.execute(
            select(
                select(func.count()).select_from(JournalEntry).scalar_subquery(),
                select(func.count()).select_from(Posting).scalar_subquery(),
                select(func.count()).select_from(Account).scalar_subquery(),
            )
        )
    ).one()
    report.entries, report.postings, report.accounts = (int(value) for value in counts)

    # 1. Every entry sums to zero in each currency.
    unbalanced = await session.execute(
        select(Posting.entry_id, Posting.currency, func.sum(Posting.amount_minor))
        .group_by(Posting.entry_id, Posting.currency)
        .having(func.sum(Posting.amount_minor) != 0)
    )
    for entry_id, currency, total in unbalanced:
        report.problems.append(
            Problem("entry_balanced", str(entry_id), f"{currency} postings sum to {total}")
        )

    # 2. Posted entries have postings; declined ones have none.
    posting_count = func.count(Posting.id)
    shapes = await session.execute(
        select(JournalEntry.id, JournalEntry.status, posting_count)
        .join(Posting, Posting.entry_id == JournalEntry.id, isouter=True)
        .group_by(JournalEntry.id, JournalEntry.status)
        .having(
            or_(
                and_(JournalEntry.status == EntryStatus.posted.value, posting_count < 2),
                and_(JournalEntry.status == EntryStatus.declined.value, posting_count > 0),
                JournalEntry.status.not_in([status.value for status in EntryStatus]),
            )
        )
    )
    for entry_id, status, count in shapes:
        report.problems.append(
            Problem("entry_shape", str(entry_id), f"{status} entry has {count} postings")
        )

    # 3. Customer accounts: cached == sum of postings == last balance_after; never negative.
    totals = (
        select(
            Posting.account_id.label("account_id"),
            func.sum(Posting.amount_minor).label("total"),
            func.max(Posting.id).label("last_id"),
        )
        .group_by(Posting.account_id)
        .subquery()
    )
    last_posting = Posting.__table__.alias("last_posting")
    accounts = await session.execute(
        select(
            Account.id,
            Account.balance_minor,
            Account.held_minor,
            func.coalesce(totals.c.total, 0),
            last_posting.c.balance_after_minor,
        )
        .join(totals, totals.c.account_id == Account.id, isouter=True)
        .join(last_posting, last_posting.c.id == totals.c.last_id, isouter=True)
        .where(Account.is_internal.is_(False))
    )
    for account_id, balance, held, total, last_after in accounts:
        subject = str(account_id)
        if balance != total:
            report.problems.append(
                Problem("cached_balance", subject, f"cached {balance} != sum of postings {total}")
            )
        if (last_after or 0) != balance:
            report.problems.append(
                Problem(
                    "balance_after", subject, f"cached {balance} != last balance_after {last_after}"
                )
            )
        if balance < 0:
            report.problems.append(Problem("negative_balance", subject, f"balance {balance}"))
        if held < 0:
            report.problems.append(Problem("negative_hold", subject, f"held {held}"))
        elif balance - held < 0:
            report.problems.append(
                Problem("negative_available", subject, f"balance {balance} - held {held} < 0")
            )

    # 4. Internal accounts never carry a cached balance (theirs is derived).
    cached_internal = await session.execute(
        select(Account.id, Account.balance_minor).where(
            Account.is_internal.is_(True), Account.balance_minor != 0
        )
    )
    for account_id, balance in cached_internal:
        report.problems.append(
            Problem("internal_cached_balance", str(account_id), f"cached balance {balance}")
        )

    # 5. A posting's currency is its account's currency.
    mismatched = await session.execute(
        select(Posting.id, Posting.currency, Account.currency)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.currency != Account.currency)
    )
    for posting_id, posting_currency, account_currency in mismatched:
        report.problems.append(
            Problem(
                "posting_currency",
                f"posting {posting_id}",
                f"{posting_currency} posting on a {account_currency} account",
            )
        )
    # 6. Held amounts equal the open card holds (see ledger/holds.py).
    from banking.ledger.holds import verify_holds

    await verify_holds(session, report)
    await session.rollback()
    return report
