"""`make bench` (after bench.statements): does a history page deep in a long account cost
what the first page does?

Builds an account with 1,000,000 postings on SQLite (the statement benchmark's builder,
`bench.statements.build`) and on PostgreSQL (a fresh database, rows written in bulk with
`generate_series`; the ledger's rules are not exercised here, every entry is a balanced
deposit against the cash account). Then reads `GET /v1/accounts/{id}/transactions?limit=20`'s
query through the read path's own function (`ledger.history.account_history_sync`, no
HTTP): the first page, and page 5,000 (100,000 postings deep) reached by its cursor.
Reports the median of each and their ratio (1.0: the depth costs nothing, as keyset
pagination on the index (account_id, id) promises) with the query plan.
Results: bench/results/history-<timestamp>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from banking.core.migrate import upgrade
from banking.ledger import cursor as cursors
from banking.ledger import history, internal
from bench import statements as statements_bench

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PAGE = 20
DEEP_PAGE = 5_000
BIG_ID = statements_bench.BIG_ID


def _median_ms(work: Callable[[], object], repeat: int) -> float:
    work()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _cursor_of_page(connection: Connection, account_id: uuid.UUID, page: int) -> str:
    """The cursor a client holds after reading `page - 1` pages: the last posting id seen."""
    offset = (page - 1) * PAGE - 1
    row = connection.execute(
        text(
            "SELECT id FROM posting WHERE account_id = :account ORDER BY id DESC "
            "LIMIT 1 OFFSET :offset"
        ),
        {
            "account": account_id if connection.dialect.name == "postgresql" else account_id.hex,
            "offset": offset,
        },
    ).one()
    return cursors.encode({"k": "posted", "p": row[0]})


def measure_on(connection: Connection, repeat: int, deep_page: int) -> dict[str, Any]:
    deep_cursor = _cursor_of_page(connection, BIG_ID, deep_page)

    def page(cursor: str | None) -> Callable[[], object]:
        filters = history.HistoryFilters(limit=PAGE, cursor=cursor)
        return lambda: history.account_history_sync(connection, account_id=BIG_ID, filters=filters)

    first_items, _ = page(None)()
    deep_items, _ = page(deep_cursor)()
    assert len(first_items) == len(deep_items) == PAGE
    # Interleaved rounds, so that the load of a shared machine falls on both alike.
    firsts, deeps = [], []
    for _ in range(5):
        firsts.append(_median_ms(page(None), max(1, repeat // 5)))
        deeps.append(_median_ms(page(deep_cursor), max(1, repeat // 5)))
    count = connection.execute(
        text("SELECT count(*) FROM posting WHERE account_id = :account"),
        {"account": _key(connection, BIG_ID)},
    ).scalar_one()
    return {
        "postings": count,
        "first_ms": statistics.median(firsts),
        "deep_ms": statistics.median(deeps),
        "plan": _plan(connection),
    }


def _key(connection: Connection, account_id: uuid.UUID) -> Any:
    """An id as a textual statement binds it (SQLite stores UUIDs as 32 hex digits)."""
    return account_id if connection.dialect.name == "postgresql" else account_id.hex


def on_postgres(url: str, fn: Callable[[Connection], Any]) -> Any:
    """`fn` on a synchronous `Connection` over asyncpg (the service's driver), committed."""

    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _plan(connection: Connection) -> str:
    sql = (
        "SELECT id FROM posting WHERE account_id = :account AND id < :before "
        "ORDER BY id DESC LIMIT 21"
    )
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            text("EXPLAIN " + sql), {"account": BIG_ID, "before": 10**12}
        ).all()
        return " / ".join(row[0].strip() for row in rows[:3])
    rows = connection.execute(
        text("EXPLAIN QUERY PLAN " + sql), {"account": BIG_ID.hex, "before": 10**12}
    ).all()
    return "; ".join(str(row[-1]) for row in rows)


def build_postgres(name: str, postings: int) -> str:
    admin = ["psql", PG_ADMIN, "-q", "-c"]
    subprocess.run([*admin, f'DROP DATABASE IF EXISTS "{name}"'], check=True)
    subprocess.run([*admin, f'CREATE DATABASE "{name}"'], check=True)
    base = re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN)
    url = re.sub(r"^postgresql://", "postgresql+asyncpg://", base)
    upgrade(url, "head")
    cash = internal.internal_account_id(internal.Purpose.cash, "USD")

    def load(connection: Connection) -> None:
        internal.ensure_internal_accounts(connection)
        connection.execute(
            text(
                "INSERT INTO account (id, number, is_internal, type, currency, status,"
                " balance_minor, held_minor, outgoing_minor, created_at) VALUES (:id,"
                " '400000000018', false, 'checking', 'USD', 'active', :balance, 0, 0,"
                " '2015-01-01T00:00:00Z')"
            ),
            {"id": BIG_ID, "balance": 100 * postings},
        )
        connection.execute(
            text(
                "INSERT INTO journal_entry (id, kind, status, source_account_id,"
                " target_account_id, origin_account_id, amount_minor, currency, description,"
                " created_at) SELECT md5('entry' || g)::uuid, 'deposit', 'posted', :cash,"
                " :big, :big, 100, 'USD', 'deposit ' || g, timestamptz '2015-01-01T00:00:00Z'"
                " + g * interval '1 minute' FROM generate_series(1, :n) AS g"
            ),
            {"cash": cash, "big": BIG_ID, "n": postings},
        )
        connection.execute(
            text(
                "INSERT INTO posting (entry_id, account_id, amount_minor, currency,"
                " balance_after_minor, created_at) SELECT md5('entry' || g)::uuid, leg.account,"
                " leg.sign * 100, 'USD', CASE WHEN leg.sign > 0 THEN 100 * g END,"
                " timestamptz '2015-01-01T00:00:00Z' + g * interval '1 minute'"
                " FROM generate_series(1, :n) AS g,"
                " (VALUES (CAST(:cash AS uuid), -1), (CAST(:big AS uuid), 1)) AS leg(account, sign)"
                " ORDER BY g, leg.sign"
            ),
            {"cash": cash, "big": BIG_ID, "n": postings},
        )

    on_postgres(url, load)
    subprocess.run(["psql", base, "-q", "-c", "VACUUM ANALYZE"], check=True)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="timed reads per figure")
    parser.add_argument("--deep-page", type=int, default=DEEP_PAGE)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--output", type=Path, default=None, help="where to write the report (default: results)"
    )
    parser.add_argument(
        "--sqlite-file", type=Path, help="reuse (or create) this SQLite file instead of a temp one"
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-history-") as scratch:
        for database in args.databases.split(","):
            started = time.perf_counter()
            if database == "sqlite":
                path = args.sqlite_file or Path(scratch) / "history.db"
                if not path.exists():
                    statements_bench.build(path, big=args.postings, small=1_000)
                built = time.perf_counter() - started
                engine = create_engine(f"sqlite:///{path}")
                with engine.connect() as connection:
                    figures = measure_on(connection, args.repeat, args.deep_page)
                engine.dispose()
                results[database] = {**figures, "build_s": built}
            else:
                name = f"bench_history_{os.getpid()}"
                try:
                    url = build_postgres(name, args.postings)
                    built = time.perf_counter() - started
                    figures = on_postgres(
                        url, lambda connection: measure_on(connection, args.repeat, args.deep_page)
                    )
                    results[database] = {**figures, "build_s": built}
                finally:
                    subprocess.run(
                        [
                            "psql",
                            PG_ADMIN,
                            "-q",
                            "-c",
                            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                        ],
                        check=False,
                    )
    stamp = dt.datetime.now(dt.UTC)
    lines = [
        f"# History depth benchmark, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"One account with {args.postings:,} postings; `GET /v1/accounts/{{id}}/transactions"
        f"?limit={PAGE}`'s read (`ledger.history.account_history_sync`, no HTTP): page 1 "
        f"against page {args.deep_page:,} ({(args.deep_page - 1) * PAGE:,} postings deep, by its "
        f"cursor). Median of {args.repeat} reads each, interleaved. Load average at the end: "
        f"{' / '.join(f'{value:.2f}' for value in os.getloadavg())}.",
        "",
        f"| database | postings of the account | page 1 | page {args.deep_page:,} | ratio | "
        "built in | plan |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for database, row in results.items():
        lines.append(
            f"| {database} | {row['postings']:,} | {row['first_ms']:.3f} ms | "
            f"{row['deep_ms']:.3f} ms | {row['deep_ms'] / row['first_ms']:.2f} | "
            f"{row['build_s']:.0f} s | `{row['plan']}` |"
        )
    report = "\n".join(lines) + "\n"
    target = args.output or RESULTS / f"history-{stamp:%Y-%m-%dT%H-%M-%SZ}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report)
    sys.stdout.write(report + f"\nwritten to {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
