"""`make bench` (after bench.run): is a statement's cost independent of the history length?

Builds a SQLite file with two customer accounts: one with 1,000,000 postings over ten years,
one with 1,000. Both have the same number of postings in the measured month, so any
difference in time comes from the history around it. Rows are written in bulk with SQL
(the ledger's rules are not exercised here): every entry is balanced against the cash
account or a third customer account, and `balance_after_minor` runs exactly.

Reports the median time of one month's statement as JSON and as PDF, and of the months
list, for each account, and the ratio. Results: bench/results/statements-<timestamp>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from banking.core.config import Settings
from banking.core.db import Database
from banking.core.migrate import upgrade
from banking.ledger import internal
from banking.statements import render
from banking.statements import service as statements
from banking.statements.schemas import statement_out

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FIRST_YEAR, YEARS = 2015, 10
MEASURED_MONTH = "2024-06"
LINES_IN_MONTH = 400
NOW = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)
BIG_ID = uuid.UUID("00000000-0000-4000-8000-00000000b16a")
SMALL_ID = uuid.UUID("00000000-0000-4000-8000-0000000005aa")
PEER_ID = uuid.UUID("00000000-0000-4000-8000-0000000000ee")
ACCOUNTS = {BIG_ID: "400000000018", SMALL_ID: "400000000026", PEER_ID: "400000000034"}
BATCH = 50_000


def _stamp(moment: dt.datetime) -> str:
    # How the UTC timestamp columns store time on SQLite (naive UTC, microseconds).
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _months() -> Iterator[tuple[int, int]]:
    for year in range(FIRST_YEAR, FIRST_YEAR + YEARS):
        for month in range(1, 13):
            yield year, month


def _times(total: int, rng: random.Random) -> list[dt.datetime]:
    """`total` moments over ten years, exactly LINES_IN_MONTH of them in MEASURED_MONTH."""
    months = list(_months())
    measured = (int(MEASURED_MONTH[:4]), int(MEASURED_MONTH[5:]))
    others = [month for month in months if month != measured]
    per_month = {month: (total - LINES_IN_MONTH) // len(others) for month in others}
    for month in others[: (total - LINES_IN_MONTH) % len(others)]:
        per_month[month] += 1
    per_month[measured] = LINES_IN_MONTH
    moments = []
    for (year, month), count in per_month.items():
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        following = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
        span = int((following - start).total_seconds() * 1_000_000)
        offsets = sorted(rng.randrange(span) for _ in range(count))
        moments.extend(start + dt.timedelta(microseconds=offset) for offset in offsets)
    return moments


def build(path: Path, *, big: int, small: int) -> None:
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "head")
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        internal.ensure_internal_accounts(connection)
    engine.dispose()
    cash = internal.internal_account_id(internal.Purpose.cash, "USD").hex
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    created = _stamp(dt.datetime(FIRST_YEAR, 1, 1, tzinfo=dt.UTC))
    db.executemany(
        "INSERT INTO account (id, number, is_internal, type, currency, status, balance_minor,"
        " held_minor, outgoing_minor, created_at) VALUES (?, ?, 0, 'checking', 'USD',"
        " 'active', 0, 0, 0, ?)",
        [(account_id.hex, number, created) for account_id, number in ACCOUNTS.items()],
    )
    # Rebuilding the indexes once after the load is much faster than maintaining them.
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('posting', 'journal_entry')"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    rng = random.Random(2024)
    balances = dict.fromkeys(ACCOUNTS, 0)
    entries: list[tuple[Any, ...]] = []
    postings: list[tuple[Any, ...]] = []
    moments = [(moment, BIG_ID) for moment in _times(big, rng)]
    moments += [(moment, SMALL_ID) for moment in _times(small, rng)]
    moments.sort()
    for index, (moment, account_id) in enumerate(moments):
        stamp = _stamp(moment)
        amount = rng.randint(100, 50_000)
        choice = rng.random()
        entry_id = uuid.uuid4().hex
        own = account_id.hex
        if choice < 0.55 or balances[account_id] < amount:
            kind, source, target, signed = "deposit", cash, own, amount
        elif choice < 0.85:
            kind, source, target, signed = "withdrawal", own, cash, -amount
        else:
            kind, source, target, signed = "transfer", own, PEER_ID.hex, -amount
        balances[account_id] += signed
        entries.append(
            (entry_id, kind, "posted", source, target, own, amount, "USD", f"{kind} {index}", stamp)
        )
        postings.append((entry_id, own, signed, "USD", balances[account_id], stamp))
        if kind == "transfer":
            balances[PEER_ID] += amount
            postings.append((entry_id, PEER_ID.hex, amount, "USD", balances[PEER_ID], stamp))
        else:
            postings.append((entry_id, cash, -signed, "USD", None, stamp))
        if len(entries) >= BATCH:
            _flush(db, entries, postings)
    _flush(db, entries, postings)
    db.executemany(
        "UPDATE account SET balance_minor = ? WHERE id = ?",
        [(balance, account_id.hex) for account_id, balance in balances.items()],
    )
    for _, sql in indexes:
        db.execute(sql)
    db.commit()
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


def _flush(db: sqlite3.Connection, entries: list[Any], postings: list[Any]) -> None:
    db.executemany(
        "INSERT INTO journal_entry (id, kind, status, source_account_id, target_account_id,"
        " origin_account_id, amount_minor, currency, description, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        entries,
    )
    db.executemany(
        "INSERT INTO posting (entry_id, account_id, amount_minor, currency,"
        " balance_after_minor, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        postings,
    )
    entries.clear()
    postings.clear()


async def _medians_ms(
    works: dict[str, Callable[[], Awaitable[object]]], repeat: int
) -> dict[str, float]:
    """Median time of each work, the works interleaved run by run so that the load of a
    shared machine falls on all of them alike; one warm-up run each first."""
    samples: dict[str, list[float]] = {name: [] for name in works}
    for work in works.values():
        await work()
    for _ in range(repeat):
        for name, work in works.items():
            started = time.perf_counter()
            await work()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


async def measure(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        app_env="test",
        database_url=f"sqlite+aiosqlite:///{path}",
        jwt_secret="bench-jwt-secret-0123456789abcdef0123456789abcdef",
        card_encryption_key="bench-card-key-0123456789abcdef0123456789abcdef",
        card_network_api_key="bench-network-key-0123456789abcdef0123456789abcdef",
        audit_key="bench-audit-key-0123456789abcdef0123456789abcdef",
    )
    db = Database(settings)

    async def read(account_id: uuid.UUID) -> statements.Statement:
        async with db.sessionmaker() as session:
            return await statements.build_statement(
                session, account_id=account_id, month=MEASURED_MONTH, timezone="UTC", now=NOW
            )

    async def as_json(account_id: uuid.UUID) -> str:
        return statement_out(await read(account_id)).model_dump_json()

    async def as_pdf(account_id: uuid.UUID) -> bytes:
        return render.to_pdf(await read(account_id), bank_name="Bench Bank")

    async def months(account_id: uuid.UUID) -> object:
        async with db.sessionmaker() as session:
            return await statements.list_months(
                session, principal=None, account_id=account_id, timezone="UTC", limit=20
            )

    accounts = {"big": BIG_ID, "small": SMALL_ID}
    kinds: dict[str, Callable[[uuid.UUID], Awaitable[object]]] = {
        "read_ms": read,
        "json_ms": as_json,
        "pdf_ms": as_pdf,
        "months_ms": months,
    }
    try:
        figures: dict[str, dict[str, float]] = {
            label: {"lines": (await read(account_id)).count}
            for label, account_id in accounts.items()
        }
        for kind, work in kinds.items():
            runs = max(3, repeat // 4) if kind == "pdf_ms" else repeat
            medians = await _medians_ms(
                {
                    label: functools.partial(work, account_id)
                    for label, account_id in accounts.items()
                },
                runs,
            )
            for label, value in medians.items():
                figures[label][kind] = value
    finally:
        await db.dispose()
    return figures


def query_plan(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    start, end = _stamp(dt.datetime(2024, 6, 1)), _stamp(dt.datetime(2024, 7, 1))
    plans = []
    for sql, params in (
        (
            "SELECT balance_after_minor FROM posting WHERE account_id = ? AND created_at < ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (BIG_ID.hex, start),
        ),
        (
            "SELECT id FROM posting WHERE account_id = ? AND created_at >= ? AND created_at < ?"
            " ORDER BY created_at, id",
            (BIG_ID.hex, start, end),
        ),
    ):
        rows = db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        plans.append("; ".join(row[-1] for row in rows))
    db.close()
    return plans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=1_000_000, help="postings of the big account")
    parser.add_argument("--small", type=int, default=1_000, help="postings of the small one")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per figure")
    parser.add_argument(
        "--database", type=Path, help="reuse (or create) this SQLite file instead of a temp one"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="write the report here instead of bench/results/statements-<timestamp>.md",
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-statements-") as scratch:
        path = args.database or Path(scratch) / "statements.db"
        build_s = 0.0
        if not path.exists():
            started = time.perf_counter()
            build(path, big=args.big, small=args.small)
            build_s = time.perf_counter() - started
        figures = asyncio.run(measure(path, args.repeat))
        plans = query_plan(path)
        size_mb = path.stat().st_size / 1e6
    big, small = figures["big"], figures["small"]
    names = {"big": f"{args.big:,} postings", "small": f"{args.small:,} postings"}
    started_at = dt.datetime.now(dt.UTC)
    lines = [
        f"# Statement benchmark, {started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"SQLite file of {size_mb:.0f} MB"
        + (f", built in {build_s:.0f} s" if build_s else " (reused)")
        + f". Month {MEASURED_MONTH}: {LINES_IN_MONTH} lines in both accounts "
        f"(`--big {args.big} --small {args.small}`); median of {args.repeat} runs "
        "(PDF: a quarter as many) after one warm-up, the two accounts interleaved, through "
        "the service and renderer (no HTTP). *Reads only*: the statement's queries and rows.",
        "",
        "| account | lines in month | reads only | JSON statement | PDF statement "
        "| months list (20) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, row in figures.items():
        lines.append(
            f"| {names[label]} | {row['lines']:.0f} | {row['read_ms']:.1f} ms "
            f"| {row['json_ms']:.1f} ms "
            f"| {row['pdf_ms']:.1f} ms | {row['months_ms']:.1f} ms |"
        )
    lines.append(
        f"| ratio ({names['big']} / {names['small']}) | "
        f"| {big['read_ms'] / small['read_ms']:.2f} "
        f"| {big['json_ms'] / small['json_ms']:.2f} | {big['pdf_ms'] / small['pdf_ms']:.2f} "
        f"| {big['months_ms'] / small['months_ms']:.2f} |"
    )
    lines += ["", "Query plans (SQLite):", ""]
    lines += [f"- `{plan}`" for plan in plans]
    report = "\n".join(lines) + "\n"
    target = args.output or RESULTS / f"statements-{started_at:%Y-%m-%dT%H-%M-%SZ}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report)
    sys.stdout.write(report + f"\nwritten to {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
