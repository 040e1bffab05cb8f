"""Property: the balance (and what was held) at any instant, as GET .../balance?at= reads it
from the postings' `balance_after`, equals a replay of what happened up to that instant:
deposits, withdrawals (some declined), card holds placed, captured, voided or lapsed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass, field

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from banking.app import create_app
from tests.cards_support import NETWORK, payment
from tests.conftest import make_settings
from tests.factories import keyed, make_member

BASE = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
HOLD_DAYS = 1

step = st.one_of(
    st.tuples(st.just("deposit"), st.integers(1, 50_00)),
    st.tuples(st.just("withdraw"), st.integers(1, 60_00)),
    st.tuples(st.just("authorize"), st.integers(1, 40_00)),
    st.tuples(st.just("capture"), st.integers(0, 5)),
    st.tuples(st.just("void"), st.integers(0, 5)),
    # Minutes: a hold lasts 1,440, so some lapse; 0 puts movements on the same instant.
    st.tuples(st.just("wait"), st.sampled_from([0, 1, 30, 600, 1_500])),
)


@dataclass
class Hold:
    start: dt.datetime
    # The expiry, until a capture or a void ends it sooner.
    end: dt.datetime
    amount: int


@dataclass
class Replay:
    """What happened, as the API answered it."""

    movements: list[tuple[dt.datetime, int]] = field(default_factory=list)
    holds: dict[str, Hold] = field(default_factory=dict)

    def at(self, moment: dt.datetime) -> tuple[int, int]:
        balance = sum(amount for time, amount in self.movements if time <= moment)
        held = sum(hold.amount for hold in self.holds.values() if hold.start <= moment < hold.end)
        return balance, held


def test_the_balance_at_any_instant_is_the_replay_of_the_history(database_url: str) -> None:
    app_settings = make_settings(
        database_url,
        card_hold_days=HOLD_DAYS,
        hold_sweep_interval_s=0,
        scheduler_interval_s=0,
    )
    app = create_app(app_settings)
    stack = contextlib.AsyncExitStack()
    with asyncio.Runner() as runner:

        async def start() -> tuple[httpx.AsyncClient, dict[str, str]]:
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 51000))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )
            member = await make_member(client)
            return client, member.headers

        client, headers = runner.run(start())

        async def scenario(steps: list[tuple[str, int]], probes: list[float]) -> None:
            now = BASE
            app.state.clock = lambda: now
            opened = await client.post("/v1/accounts", json={"type": "checking"}, headers=headers)
            assert opened.status_code == 201, opened.text
            account_id = opened.json()["id"]
            issued = await client.post(
                f"/v1/accounts/{account_id}/cards", json={"type": "virtual"}, headers=headers
            )
            assert issued.status_code == 201, issued.text
            card = issued.json()
            replay = Replay()
            open_holds: list[str] = []
            for kind, value in steps:
                if kind == "wait":
                    now = now + dt.timedelta(minutes=value)
                    app.state.clock = lambda moment=now: moment  # type: ignore[misc]
                elif kind in ("deposit", "withdraw"):
                    path = "deposits" if kind == "deposit" else "withdrawals"
                    response = await client.post(
                        f"/v1/accounts/{account_id}/{path}",
                        json={"amount": value},
                        headers=keyed(headers),
                    )
                    assert response.status_code in (201, 409), response.text
                    if response.status_code == 201:
                        replay.movements.append((now, value if kind == "deposit" else -value))
                elif kind == "authorize":
                    response = await client.post(
                        "/v1/card-authorizations",
                        json=payment(card, value),
                        headers={**NETWORK, "Idempotency-Key": str(uuid.uuid4())},
                    )
                    assert response.status_code in (201, 402, 409), response.text
                    body = response.json()
                    if response.status_code == 201 and body["status"] == "approved":
                        replay.holds[body["id"]] = Hold(
                            now, now + dt.timedelta(days=HOLD_DAYS), value
                        )
                        open_holds.append(body["id"])
                elif open_holds:
                    hold_id = open_holds[value % len(open_holds)]
                    hold = replay.holds[hold_id]
                    if kind == "capture":
                        response = await client.post(
                            f"/v1/card-authorizations/{hold_id}/capture",
                            json={"amount": hold.amount},
                            headers={**NETWORK, "Idempotency-Key": str(uuid.uuid4())},
                        )
                    else:
                        response = await client.post(
                            f"/v1/card-authorizations/{hold_id}/void",
                            headers={**NETWORK, "Idempotency-Key": str(uuid.uuid4())},
                        )
                    open_holds.remove(hold_id)
                    if response.status_code in (200, 201):
                        hold.end = min(hold.end, now)
                        if kind == "capture":
                            replay.movements.append((now, -hold.amount))
                    else:
                        # A lapsed hold can no longer be captured or voided.
                        assert response.status_code in (409, 422), response.text
            # Instants: each movement's own time, just before and after it, and random ones
            # from before the account existed to now.
            span = (now - BASE).total_seconds() + 3_600
            instants = {BASE - dt.timedelta(hours=1), now}
            for time, _ in replay.movements:
                instants |= {time, time - dt.timedelta(microseconds=1)}
            for hold in replay.holds.values():
                instants |= {hold.start, hold.end - dt.timedelta(microseconds=1), hold.end}
            instants |= {
                BASE - dt.timedelta(hours=1) + dt.timedelta(seconds=fraction * span)
                for fraction in probes
            }
            for moment in sorted(instant for instant in instants if instant <= now):
                response = await client.get(
                    f"/v1/accounts/{account_id}/balance",
                    params={"at": moment.isoformat()},
                    headers=headers,
                )
                assert response.status_code == 200, response.text
                body = response.json()
                balance, held = replay.at(moment)
                assert (body["balance"], body["held"]) == (balance, held), (moment, steps)
                assert body["available_balance"] == balance - held

        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(
            st.lists(step, min_size=1, max_size=14),
            st.lists(st.floats(0, 1), min_size=1, max_size=4),
        )
        def check(steps: list[tuple[str, int]], probes: list[float]) -> None:
            runner.run(scenario(steps, probes))

        try:
            check()
        finally:
            runner.run(stack.aclose())
