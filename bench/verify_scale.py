"""How long does `banking ledger verify` take on a large ledger?

Builds a scratch database with bulk SQL (the ledger's rules are not exercised): ACCOUNTS
customer accounts and ENTRIES deposits from the cash account, one second apart, so
2 x ENTRIES postings; every balance_after, cached balance and account clock is exact, so
verify must pass. Then runs `banking ledger verify` (and `--since 1h` of the ledger's
time) in a subprocess and prints the wall time of each.

    python -m bench.verify_scale                       # SQLite file in a temporary dir
    python -m bench.verify_scale --database-url postgresql+asyncpg://postgres@127.0.0.1/x

The PostgreSQL database must exist and be empty (it is migrated here).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine.url import make_url

from banking.core.migrate import upgrade
from banking.ledger import internal

START = "2026-01-29 00:00:00"


def _sqlite_statements(cash: str, accounts: int, entries: int) -> list[str]:
    seq = "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})"
    account_id = "printf('%016x%016x', 10, {})"
    entry_id = "printf('%016x%016x', 20, {})"
    at = f"datetime('{START}', '+' || {{}} || ' seconds')"
    return [
        f"{seq.format(n=accounts - 1)} INSERT INTO account (id, number, is_internal, type,"
        f" currency, status, balance_minor, held_minor, outgoing_minor, created_at)"
        f" SELECT {account_id.format('i')}, printf('%012d', i), 0, 'checking', 'USD',"
        f" 'active', 0, 0, 0, '{START}' FROM seq",
        f"{seq.format(n=entries - 1)} INSERT INTO journal_entry (id, kind, status,"
        f" source_account_id, target_account_id, origin_account_id, amount_minor, currency,"
        f" created_at) SELECT {entry_id.format('i')}, 'deposit', 'posted', '{cash}',"
        f" {account_id.format(f'i % {accounts}')}, {account_id.format(f'i % {accounts}')},"
        f" 100, 'USD', {at.format('i')} FROM seq",
        f"{seq.format(n=entries - 1)} INSERT INTO posting (entry_id, account_id, amount_minor,"
        f" currency, balance_after_minor, created_at) SELECT {entry_id.format('i')},"
        f" {account_id.format(f'i % {accounts}')}, 100, 'USD', (i / {accounts} + 1) * 100,"
        f" {at.format('i')} FROM seq",
        f"{seq.format(n=entries - 1)} INSERT INTO posting (entry_id, account_id, amount_minor,"
        f" currency, balance_after_minor, created_at) SELECT {entry_id.format('i')}, '{cash}',"
        f" -100, 'USD', NULL, {at.format('i')} FROM seq",
        "UPDATE account SET balance_minor = (SELECT coalesce(sum(amount_minor), 0) FROM posting"
        " WHERE posting.account_id = account.id), stamped_at = (SELECT max(created_at) FROM"
        " posting WHERE posting.account_id = account.id) WHERE is_internal = 0",
    ]


def _postgres_statements(cash: str, accounts: int, entries: int) -> list[str]:
    account_id = "('00000000-0000-4000-8000-' || lpad(to_hex({}), 12, '0'))::uuid"
    entry_id = "('00000000-0000-4000-9000-' || lpad(to_hex({}), 12, '0'))::uuid"
    at = f"(timestamptz '{START}+00' + {{}} * interval '1 second')"
    target = account_id.format(f"i % {accounts}")
    return [
        f"INSERT INTO account (id, number, is_internal, type, currency, status, balance_minor,"
        f" held_minor, outgoing_minor, created_at) SELECT {account_id.format('i')},"
        f" lpad(i::text, 12, '0'), false, 'checking', 'USD', 'active', 0, 0, 0,"
        f" timestamptz '{START}+00' FROM generate_series(0, {accounts - 1}) AS i",
        f"INSERT INTO journal_entry (id, kind, status, source_account_id, target_account_id,"
        f" origin_account_id, amount_minor, currency, created_at) SELECT"
        f" {entry_id.format('i')}, 'deposit', 'posted', '{cash}', {target}, {target}, 100,"
        f" 'USD', {at.format('i')} FROM generate_series(0, {entries - 1}) AS i",
        f"INSERT INTO posting (entry_id, account_id, amount_minor, currency,"
        f" balance_after_minor, created_at) SELECT {entry_id.format('i')}, {target}, 100,"
        f" 'USD', (i / {accounts} + 1) * 100, {at.format('i')}"
        f" FROM generate_series(0, {entries - 1}) AS i",
        f"INSERT INTO posting (entry_id, account_id, amount_minor, currency,"
        f" balance_after_minor, created_at) SELECT {entry_id.format('i')}, '{cash}', -100,"
        f" 'USD', NULL, {at.format('i')} FROM generate_series(0, {entries - 1}) AS i",
        "UPDATE account SET balance_minor = totals.total, stamped_at = totals.last_at FROM"
        " (SELECT account_id, sum(amount_minor) AS total, max(created_at) AS last_at FROM"
        " posting GROUP BY account_id) AS totals WHERE totals.account_id = account.id"
        " AND NOT account.is_internal",
    ]


def build(database_url: str, *, accounts: int, entries: int) -> None:
    upgrade(database_url)
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        run_asyncpg(database_url, accounts=accounts, entries=entries)
        return
    engine = create_engine(url.set(drivername="sqlite"))
    with engine.begin() as connection:
        internal.ensure_internal_accounts(connection)
        cash = internal.internal_account_id(internal.Purpose.cash, "USD").hex
        for statement in _sqlite_statements(cash, accounts, entries):
            connection.execute(text(statement))
    engine.dispose()


def run_asyncpg(database_url: str, *, accounts: int, entries: int) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def work() -> None:
        engine = create_async_engine(database_url)
        async with engine.begin() as connection:
            await connection.run_sync(internal.ensure_internal_accounts)
            cash = str(internal.internal_account_id(internal.Purpose.cash, "USD"))
            for statement in _postgres_statements(cash, accounts, entries):
                await connection.execute(text(statement))
        await engine.dispose()

    asyncio.run(work())


def timed_verify(database_url: str, *args: str) -> tuple[float, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "JWT_SECRET": "bench-jwt-secret-0123456789abcdef0123456789abcdef",
        "CARD_ENCRYPTION_KEY": "bench-card-key-0123456789abcdef0123456789abcdef",
        "CARD_NETWORK_API_KEY": "bench-network-key-0123456789abcdef0123456789abcdef",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "banking.cli", "ledger", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"verify failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=500_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = options.database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'verify.db'}"
        started = time.perf_counter()
        build(url, accounts=options.accounts, entries=options.entries)
        print(f"built {2 * options.entries} postings in {time.perf_counter() - started:.1f} s")
        for args in ((), ("--since", "2026-02-03T00:00:00Z")):
            elapsed, output = timed_verify(url, *args)
            print(f"verify {' '.join(args) or '(full)'}: {elapsed:.1f} s wall; {output}")


if __name__ == "__main__":
    main()
