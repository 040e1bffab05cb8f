"""Transfers with Idempotency-Keys through the Python client, and the checks after."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import httpx

from banking.client import AsyncBankingClient, BankingError
from tests.server import server_env

PASSWORD = "correct horse battery staple 42"
FUNDING_MINOR = 1_000_000_00


@dataclass
class Customer:
    email: str
    account_id: str
    account_number: str


@dataclass
class Outcome:
    key: str
    amount: int
    sent_at: float
    done_at: float
    entry_id: str | None = None
    error: str | None = None


class CountingTransport(httpx.AsyncBaseTransport):
    """One client's transport; counts what it met on the wire (retries included) into
    counters the clients share."""

    def __init__(self, statuses: Counter[int], transport_errors: Counter[str]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.statuses = statuses
        self.transport_errors = transport_errors

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as error:
            self.transport_errors[type(error).__name__] += 1
            raise
        self.statuses[response.status_code] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def seed(base_url: str, count: int) -> list[Customer]:
    customers = []
    async with AsyncBankingClient(base_url, retries=5) as bank:
        for _ in range(count):
            email = f"ha-{uuid.uuid4().hex[:12]}@example.com"
            await bank.signup(
                email, PASSWORD, first_name="Ha", last_name="Test", date_of_birth="1980-01-01"
            )
            await bank.login(email, PASSWORD)
            account = await bank.open_account("checking", "USD")
            await bank.deposit(account.id, FUNDING_MINOR)
            customers.append(Customer(email, account.id, account.number))
    return customers


@dataclass
class Load:
    base_url: str
    customers: list[Customer]
    clients: int = 16
    retries: int = 12
    outcomes: list[Outcome] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    logged_in: int = 0

    async def warm_up(self, *, acknowledged: int = 50, timeout_s: float = 60) -> None:
        """Wait until every client has logged in and `acknowledged` transfers went through."""
        deadline = time.monotonic() + timeout_s
        while self.logged_in < self.clients or len(self.acknowledged) < acknowledged:
            assert time.monotonic() < deadline, "the load did not get going"
            await asyncio.sleep(0.05)

    async def _client(self, index: int) -> None:
        source = self.customers[index % len(self.customers)]
        target = self.customers[(index + 1) % len(self.customers)]
        async with AsyncBankingClient(
            self.base_url,
            transport=CountingTransport(self.statuses, self.transport_errors),
            retries=self.retries,
            backoff_s=0.1,
            timeout_s=10,
        ) as bank:
            while True:
                try:
                    await bank.login(source.email, PASSWORD)
                    break
                except (BankingError, httpx.TransportError):
                    # 16 logins at once queue behind the password hash; on a loaded
                    # machine one may wait past the client's timeout: log in again.
                    await asyncio.sleep(0.2)
            self.logged_in += 1
            while not self.stop.is_set():
                key = str(uuid.uuid4())
                amount = 1 + (index * 7 + len(self.outcomes)) % 100
                outcome = Outcome(key, amount, time.monotonic(), 0.0)
                try:
                    movement = await bank.transfer(
                        source.account_id,
                        amount,
                        target_account_number=target.account_number,
                        idempotency_key=key,
                    )
                    outcome.entry_id = movement.id
                except (BankingError, httpx.HTTPError) as exc:
                    outcome.error = f"{type(exc).__name__}: {exc}"[:200]
                outcome.done_at = time.monotonic()
                self.outcomes.append(outcome)

    async def run_until(self, scenario: asyncio.Future[None] | asyncio.Task[None]) -> None:
        """Run the clients while `scenario` runs, then stop them."""
        tasks = [asyncio.create_task(self._client(index)) for index in range(self.clients)]
        try:
            await scenario
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)

    @property
    def acknowledged(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.entry_id is not None]

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.error is not None]

    def first_ack_after(self, moment: float) -> float | None:
        times = [outcome.done_at for outcome in self.acknowledged if outcome.sent_at >= moment]
        return min(times) if times else None

    def unavailable_s(self, moment: float) -> float:
        """From the last acknowledgement before `moment` to the first one sent after it."""
        before = [o.done_at for o in self.acknowledged if o.done_at <= moment]
        after = self.first_ack_after(moment)
        assert after is not None, "no transfer was acknowledged after the database came back"
        return after - (max(before) if before else moment)


async def check_ledger(
    database_url: str, load: Load, customers: list[Customer], keys: set[str] | None = None
) -> None:
    """Every acknowledged transfer is in the ledger exactly once; no key ran twice; the
    customers' money is conserved; every transfer between them came from `keys` (all the
    keys sent to this database, by default those of `load`)."""
    connection = await asyncpg.connect(database_url)
    try:
        acked = {o.entry_id: o for o in load.acknowledged}
        rows = await connection.fetch(
            "SELECT id::text AS id, idempotency_key, amount_minor FROM journal_entry "
            "WHERE id::text = ANY($1::text[])",
            list(acked),
        )
        found = {row["id"]: row for row in rows}
        missing = sorted(set(acked) - set(found))
        assert not missing, f"{len(missing)} acknowledged transfers are not in the ledger"
        for entry_id, outcome in acked.items():
            assert found[entry_id]["idempotency_key"] == outcome.key
            assert found[entry_id]["amount_minor"] == outcome.amount
        twice = await connection.fetch(
            "SELECT idempotency_key, count(*) FROM journal_entry "
            "WHERE kind = 'transfer' AND idempotency_key IS NOT NULL "
            "GROUP BY idempotency_key HAVING count(*) > 1"
        )
        assert not twice, f"keys executed twice: {twice}"
        total = await connection.fetchval(
            "SELECT sum(balance_minor) FROM account WHERE id::text = ANY($1::text[])",
            [customer.account_id for customer in customers],
        )
        assert total == FUNDING_MINOR * len(customers), "money was created or destroyed"
        # Transfers whose outcome the client never learnt ran at most once (above), and
        # those the ledger holds are all the load's keys.
        keys = keys if keys is not None else {o.key for o in load.outcomes}
        executed = await connection.fetch(
            "SELECT idempotency_key FROM journal_entry WHERE kind = 'transfer' "
            "AND status = 'posted' AND source_account_id::text = ANY($1::text[])",
            [customer.account_id for customer in customers],
        )
        assert {row["idempotency_key"] for row in executed} <= keys
    finally:
        await connection.close()


def cli_verify(database_url: str) -> str:
    """`banking ledger verify` and `banking audit verify`; both must exit 0."""
    outputs = []
    for command in (["ledger", "verify"], ["audit", "verify"]):
        done = subprocess.run(
            [sys.executable, "-m", "banking.cli", *command],
            env=server_env(database_url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"banking {' '.join(command)}: {done.stdout}{done.stderr}"
        outputs.append(done.stdout.strip())
    return "\n".join(outputs)


def migrate(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "banking.cli", "migrate"],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
