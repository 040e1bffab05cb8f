"""A Jepsen-style bank: transfers and snapshot reads while the server is killed.

A real server process (PostgreSQL: two workers when TEST_DATABASE_URL is set; SQLite:
one) serves 20 accounts:

- two "closed" members own five accounts each and only move money among their own
  accounts, so every snapshot of their balances (GET /v1/balances) must sum to exactly
  what they were funded with, at every moment, crash or no crash;
- five "open" members own two accounts each and send money to each other, so only the
  total of the whole group is invariant (checked at the end).

Sixteen client tasks send transfers, each logical transfer with one Idempotency-Key and a
known source, target and amount, and read snapshots. Three times during the run the whole
server process group is killed with SIGKILL and restarted on the same port and database.
Clients retry every unacknowledged request (connection error, 5xx, 409
idempotency_key_in_flight) with the same key and body until it is answered.

Afterwards: every account holds exactly its opening balance plus the acknowledged
transfers in and minus those out (so every acknowledged transfer survived the kills and
nothing unacknowledged was applied), the total is conserved, no balance is negative, each
key has exactly one posted journal entry if its answer was 201 (the same entry the answer
named) and none otherwise, and `banking ledger verify` and `banking audit verify` pass.
"""

from __future__ import annotations

import asyncio
import gc
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.databases import ON_POSTGRES
from tests.factories import PASSWORD
from tests.server import Server, server_env

pytestmark = pytest.mark.slow

CLOSED_MEMBERS, CLOSED_ACCOUNTS = 2, 5
OPEN_MEMBERS, OPEN_ACCOUNTS = 5, 2
OPENING_BALANCE = 100_000
CLIENTS = 16
KILLS = 3
# Acknowledged transfers between two kills (and after the last restart).
TRANSFERS_PER_ROUND = 150
RETRY_PAUSE_S = 0.05
# A safety net against a hang, not a speed assertion.
GIVE_UP_S = 240.0


class Unanswerable(AssertionError):
    """A request was never acknowledged within GIVE_UP_S."""


@dataclass
class Member:
    name: str
    headers: dict[str, str]
    accounts: list[dict[str, Any]]
    closed: bool

    @property
    def funded(self) -> int:
        return OPENING_BALANCE * len(self.accounts)


@dataclass
class LogicalTransfer:
    key: str
    member: Member
    source_id: str
    target_id: str
    amount: int
    body: dict[str, Any]
    status: int | None = None
    code: str | None = None
    entry_id: str | None = None
    attempts: int = 0
    replayed: bool = False


@dataclass
class History:
    transfers: list[LogicalTransfer] = field(default_factory=list)
    snapshots: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    acknowledged: int = 0


def _retryable(response: httpx.Response) -> str | None:
    """Why this answer does not settle the request (None when it does)."""
    if response.status_code >= 500:
        return f"http_{response.status_code}"
    if response.status_code == 409 and response.json().get("code") == "idempotency_key_in_flight":
        return "idempotency_key_in_flight"
    return None


async def _until_answered(
    http: httpx.AsyncClient, method: str, url: str, history: History, **kwargs: Any
) -> tuple[httpx.Response, int]:
    """Send the same request until the server settles it; the answer and the attempts."""
    deadline = time.monotonic() + GIVE_UP_S
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            history.retries[type(exc).__name__] += 1
        else:
            reason = _retryable(response)
            if reason is None:
                return response, attempts
            history.retries[reason] += 1
        await asyncio.sleep(RETRY_PAUSE_S)
    raise Unanswerable(f"{method} {url} was never answered")


async def _signed_up_member(
    http: httpx.AsyncClient, name: str, accounts: int, *, closed: bool
) -> Member:
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
    signup = await http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Crash",
            "last_name": name.title(),
            "date_of_birth": "1984-04-04",
        },
    )
    assert signup.status_code == 201, signup.text
    login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    opened = []
    for _ in range(accounts):
        account = await http.post("/v1/accounts", json={"type": "checking"}, headers=headers)
        assert account.status_code == 201, account.text
        deposit = await http.post(
            f"/v1/accounts/{account.json()['id']}/deposits",
            json={"amount": OPENING_BALANCE},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert deposit.status_code == 201, deposit.text
        opened.append(account.json())
    return Member(name=name, headers=headers, accounts=opened, closed=closed)


def _plan(
    rng: random.Random, member: Member, open_accounts: list[dict[str, Any]]
) -> LogicalTransfer:
    source = rng.choice(member.accounts)
    amount = rng.randint(1, 5_000)
    key = f"crash-{uuid.uuid4().hex}"
    if member.closed:
        target = rng.choice([a for a in member.accounts if a["id"] != source["id"]])
        body = {
            "source_account_id": source["id"],
            "target_account_id": target["id"],
            "amount": amount,
        }
    else:
        target = rng.choice([a for a in open_accounts if a["id"] != source["id"]])
        body = {
            "source_account_id": source["id"],
            "target_account_number": target["number"],
            "amount": amount,
        }
    return LogicalTransfer(
        key=key,
        member=member,
        source_id=source["id"],
        target_id=target["id"],
        amount=amount,
        body=body,
    )


def _check_snapshot(member: Member, body: dict[str, Any], history: History) -> None:
    items = body["items"]
    ids = sorted(item["account_id"] for item in items)
    if ids != sorted(account["id"] for account in member.accounts):
        history.violations.append(f"{member.name}: snapshot lists {ids}")
    for item in items:
        if item["balance"] < 0 or item["available_balance"] < 0:
            history.violations.append(f"{member.name}: negative balance in {item}")
    total = sum(item["balance"] for item in items)
    if member.closed and total != member.funded:
        history.violations.append(f"{member.name}: snapshot sums to {total}, not {member.funded}")


async def _client(
    http: httpx.AsyncClient,
    seed: int,
    member: Member,
    open_accounts: list[dict[str, Any]],
    history: History,
    stop: asyncio.Event,
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        planned = _plan(rng, member, open_accounts)
        history.transfers.append(planned)
        response, planned.attempts = await _until_answered(
            http,
            "POST",
            "/v1/transfers",
            history,
            json=planned.body,
            headers={**member.headers, "Idempotency-Key": planned.key},
        )
        planned.status = response.status_code
        planned.replayed = response.headers.get("Idempotent-Replayed") == "true"
        if response.status_code == 201:
            planned.entry_id = response.json()["id"]
        else:
            planned.code = response.json().get("code")
        history.acknowledged += 1
        if rng.random() < 0.5:
            snapshot, _ = await _until_answered(
                http, "GET", "/v1/balances", history, headers=member.headers
            )
            assert snapshot.status_code == 200, snapshot.text
            _check_snapshot(member, snapshot.json(), history)
            history.snapshots += 1


async def _wait_for_progress(history: History, count: int) -> None:
    target = history.acknowledged + count
    deadline = time.monotonic() + GIVE_UP_S
    while history.acknowledged < target:
        if time.monotonic() > deadline:
            raise Unanswerable("clients made no progress")
        await asyncio.sleep(0.02)


async def _crasher(server: Server, history: History, stop: asyncio.Event) -> list[float]:
    """Kill the whole server process group three times under load; restart it each time."""
    rng = random.Random(7)
    downtimes = []
    for _ in range(KILLS):
        await _wait_for_progress(history, TRANSFERS_PER_ROUND)
        await asyncio.sleep(rng.uniform(0, 0.3))  # land the kill at an arbitrary moment
        started = time.monotonic()
        server.signal(signal.SIGKILL)
        await asyncio.to_thread(server.wait, 10)
        await asyncio.to_thread(server.start, timeout_s=60)
        downtimes.append(time.monotonic() - started)
    await _wait_for_progress(history, TRANSFERS_PER_ROUND)
    stop.set()
    return downtimes


async def _run(server: Server) -> tuple[History, list[Member], list[float], int]:
    limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as http:
        closed = [
            await _signed_up_member(http, f"closed{i}", CLOSED_ACCOUNTS, closed=True)
            for i in range(CLOSED_MEMBERS)
        ]
        open_ = [
            await _signed_up_member(http, f"open{i}", OPEN_ACCOUNTS, closed=False)
            for i in range(OPEN_MEMBERS)
        ]
        members = closed + open_
        open_accounts = [account for member in open_ for account in member.accounts]
        history = History()
        stop = asyncio.Event()
        # Six clients move money inside the closed members, ten across the open ones.
        assignment = [closed[i % CLOSED_MEMBERS] for i in range(6)]
        assignment += [open_[i % OPEN_MEMBERS] for i in range(CLIENTS - 6)]
        results = await asyncio.gather(
            _crasher(server, history, stop),
            *(
                _client(http, seed, member, open_accounts, history, stop)
                for seed, member in enumerate(assignment)
            ),
        )
        downtimes: list[float] = results[0]

        # After the final restart: every account holds exactly what the answers imply.
        total_after = 0
        expected: Counter[str] = Counter()
        for member in members:
            for account in member.accounts:
                expected[account["id"]] = OPENING_BALANCE
        for transfer in history.transfers:
            if transfer.status == 201:
                expected[transfer.source_id] -= transfer.amount
                expected[transfer.target_id] += transfer.amount
        for member in members:
            response = await http.get("/v1/balances", headers=member.headers)
            assert response.status_code == 200, response.text
            _check_snapshot(member, response.json(), history)
            for item in response.json()["items"]:
                total_after += item["balance"]
                assert item["balance"] == expected[item["account_id"]], (
                    f"{member.name} account {item['account_id']}: balance {item['balance']}, "
                    f"acknowledged transfers imply {expected[item['account_id']]}"
                )
        return history, members, downtimes, total_after


async def _entries_by_key(database_url: str) -> dict[str, list[tuple[str, str]]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT idempotency_key, status, id FROM journal_entry WHERE kind = 'transfer'"
                )
            )
            found: dict[str, list[tuple[str, str]]] = {}
            for key, status, entry_id in rows:
                found.setdefault(key, []).append((status, str(uuid.UUID(str(entry_id)))))
            return found
    finally:
        await engine.dispose()


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "banking.cli", *args],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _sqlite_journal_mode(database_url: str) -> str:
    """The mode recorded in the database file's header (bytes 18-19: 2 means WAL)."""
    path = make_url(database_url).database
    assert path
    header = Path(path).read_bytes()[:20]
    return "wal" if header[18:20] == b"\x02\x02" else f"legacy({header[18]},{header[19]})"


# Killing the server under 16 open keep-alive connections can leave the client's
# connection pool (httpx over asyncio) a socket it drops without closing, in a reference
# cycle. That is the client's housekeeping, not the server's behaviour under test: every
# money invariant below is asserted regardless. The test collects that garbage itself
# before it ends, so the collector reports it here, under this filter, and not against
# whichever test runs when it next passes (CI once failed both fuzz tests for it).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_money_survives_repeated_sigkill_exactly_once(database_url: str, tmp_path: Path) -> None:
    workers = 2 if ON_POSTGRES else 1
    server = Server(
        database_url, workers=workers, log_path=tmp_path / "server.log", DB_POOL_SIZE="10"
    )
    server.start()
    try:
        history, members, downtimes, total_after = asyncio.run(_run(server))
    finally:
        server.stop()
        gc.collect()
    logs = server.logs()

    assert len(downtimes) == KILLS
    assert not history.violations, "\n".join(history.violations[:20])
    # The run really crossed the crashes: requests failed and were retried, and some
    # retries were answered from the idempotency record.
    assert sum(history.retries.values()) > 0, history.retries
    answered = [transfer for transfer in history.transfers if transfer.status is not None]
    assert len(answered) == len(history.transfers)
    assert history.snapshots > 0
    assert {t.status for t in answered} <= {201, 409}, Counter(t.status for t in answered)
    declined_codes = {t.code for t in answered if t.status == 409}
    assert declined_codes <= {"insufficient_funds"}, declined_codes

    # Conservation: the balances the server reports after the last restart add up to
    # exactly what was deposited, whatever moved between the accounts.
    funded = sum(member.funded for member in members)
    assert sum(len(member.accounts) for member in members) == (
        CLOSED_MEMBERS * CLOSED_ACCOUNTS + OPEN_MEMBERS * OPEN_ACCOUNTS
    )
    assert total_after == funded, (total_after, funded)

    # Exactly once, by the database itself: one posted entry per acknowledged key (the one
    # the answer named), none for a declined one, and no entry under a key nobody sent.
    entries = asyncio.run(_entries_by_key(database_url))
    for transfer in answered:
        posted = [
            entry_id for status, entry_id in entries.get(transfer.key, []) if status == "posted"
        ]
        if transfer.status == 201:
            assert posted == [transfer.entry_id], (transfer.key, entries.get(transfer.key))
        else:
            assert posted == [], (transfer.key, entries.get(transfer.key))
    assert set(entries) <= {transfer.key for transfer in answered}

    ledger = _cli(database_url, "ledger", "verify")
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr + logs
    assert "ledger ok" in ledger.stdout
    audit = _cli(database_url, "audit", "verify")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "audit chain ok" in audit.stdout

    if not ON_POSTGRES:
        assert _sqlite_journal_mode(database_url) == "wal"
    print(
        f"\ncrash test ({'postgresql' if ON_POSTGRES else 'sqlite'}, {workers} worker(s)): "
        f"{len(answered)} transfers ({sum(t.status == 201 for t in answered)} posted, "
        f"{sum(t.replayed for t in answered)} answered by replay), {history.snapshots} "
        f"snapshots, retries {dict(history.retries)}, downtimes "
        f"{[round(d, 1) for d in downtimes]} s",
        file=sys.stderr,
    )
