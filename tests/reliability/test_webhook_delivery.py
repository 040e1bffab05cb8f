"""Webhooks from a real server process to a real receiver on 127.0.0.1, across SIGKILLs.

A server with its dispatcher off acknowledges 1,000 transfers (their events committed,
none sent), then is killed with SIGKILL: "between commit and delivery". Restarted with
the dispatcher on, it delivers them; killed again mid-delivery and restarted, it
finishes. Every acknowledged transfer's `transfer.posted` arrives at least once, signed,
and nothing else arrives (no event invented). The stream test reads /v1/events/stream
over real HTTP (an in-process transport buffers whole responses).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from banking.client import verify_webhook
from tests.factories import PASSWORD
from tests.server import Server
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.slow

TRANSFERS = 1_000
# A safety net against a hang, not a speed assertion.
GIVE_UP_S = 180.0


def _member(http: httpx.Client) -> dict[str, str]:
    email = f"hooks-{uuid.uuid4().hex[:10]}@example.com"
    signup = http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Grace",
            "last_name": "Hopper",
            "date_of_birth": "1980-12-09",
        },
    )
    assert signup.status_code == 201, signup.text
    login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _account(http: httpx.Client, headers: dict[str, str], funds: int = 0) -> str:
    account = http.post("/v1/accounts", json={"type": "checking"}, headers=headers)
    assert account.status_code == 201, account.text
    account_id: str = account.json()["id"]
    if funds:
        deposit = http.post(
            f"/v1/accounts/{account_id}/deposits",
            json={"amount": funds},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert deposit.status_code == 201, deposit.text
    return account_id


async def _transfers(base_url: str, headers: dict[str, str], source: str, target: str) -> list[str]:
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

        async def one(index: int) -> str:
            async with gate:
                response = await http.post(
                    "/v1/transfers",
                    json={"source_account_id": source, "target_account_id": target, "amount": 1},
                    headers={**headers, "Idempotency-Key": f"hook-{index}"},
                )
            assert response.status_code == 201, response.text
            entry_id: str = response.json()["id"]
            return entry_id

        return list(await asyncio.gather(*(one(index) for index in range(TRANSFERS))))


def _wait_for_posted(receiver: Receiver, count: int) -> set[str]:
    deadline = time.monotonic() + GIVE_UP_S
    while time.monotonic() < deadline:
        posted = {
            event["subject"]["id"]
            for event in receiver.events()
            if event["type"] == "transfer.posted"
        }
        if len(posted) >= count:
            return posted
        time.sleep(0.1)
    raise AssertionError(f"{len(posted)} of {count} transfer.posted webhooks arrived")


def test_committed_events_are_delivered_after_sigkill_and_none_invented(
    database_url: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        server = Server(
            database_url,
            log_path=tmp_path / "server.log",
            WEBHOOK_ALLOW_PRIVATE="true",
            EVENTS_DISPATCH_INTERVAL_S="0",
            DB_POOL_SIZE="10",
        )
        server.start()
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                headers = _member(http)
                source = _account(http, headers, funds=TRANSFERS)
                target = _account(http, headers)
                endpoint = http.post(
                    "/v1/webhook-endpoints",
                    json={"url": receiver.url, "event_types": ["transfer.*"]},
                    headers=headers,
                )
                assert endpoint.status_code == 201, endpoint.text
                secret = endpoint.json()["secret"]
            entries = asyncio.run(_transfers(server.base_url, headers, source, target))
            assert receiver.events() == []
            # Every transfer is committed and acknowledged; nothing was sent yet.
            server.signal(signal.SIGKILL)
            server.wait()

            server.env["EVENTS_DISPATCH_INTERVAL_S"] = "0.05"
            server.start()
            _wait_for_posted(receiver, TRANSFERS // 4)
            # Killed again in the middle of delivering.
            server.signal(signal.SIGKILL)
            server.wait()
            server.start()
            posted = _wait_for_posted(receiver, TRANSFERS)
        finally:
            server.stop()

    assert posted == set(entries)
    events = receiver.requests
    # At least once: duplicates only from the kill, each with the same event id.
    by_id: dict[str, dict[str, Any]] = {}
    for request in events:
        event = verify_webhook(secret, request.headers, request.body)
        assert request.headers["Banking-Event-Id"] == event["id"]
        assert by_id.setdefault(event["id"], event) == event
        assert event["type"] == "transfer.posted"
    assert len(by_id) == TRANSFERS


def test_the_stream_resumes_after_last_event_id(database_url: str, tmp_path: Path) -> None:
    with (
        Server(
            database_url, log_path=tmp_path / "server.log", EVENTS_DISPATCH_INTERVAL_S="0.05"
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        headers = _member(http)
        account = _account(http, headers)

        def deposit(amount: int) -> None:
            response = http.post(
                f"/v1/accounts/{account}/deposits",
                json={"amount": amount},
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code == 201, response.text

        def read(count: int, last_event_id: str | None = None) -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            stream_headers = {
                **headers,
                **({"Last-Event-ID": last_event_id} if last_event_id else {}),
            }
            with http.stream("GET", "/v1/events/stream", headers=stream_headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                event_id = None
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("data: "):
                        event = json.loads(line[6:])
                        assert event["id"] == event_id
                        got.append(event)
                        if len(got) == count:
                            return got
            return got

        deposit(100)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = http.get("/v1/events", params={"type": "deposit.posted"}, headers=headers)
            if listed.json()["items"]:
                break
            time.sleep(0.05)
        first = listed.json()["items"][0]
        deposit(200)
        deposit(300)
        # Resuming after the first deposit replays the two that followed it.
        replayed = read(2, last_event_id=first["id"])
        assert [event["data"]["amount"] for event in replayed] == [200, 300]
        assert all(event["type"] == "deposit.posted" for event in replayed)
