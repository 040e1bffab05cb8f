"""The ticks that run four times a second in every process (the events dispatcher's, the
audit sealer's) ask whether there is anything to do on the read path (core/reads.py): a
tick with nothing to do checks out no connection of the async engine, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from banking.audit import sealer
from banking.events import dispatcher
from tests.factories import make_member, open_account

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # No other background job checks out a connection meanwhile (the audit sealer, which
    # has no setting, is idle: see the test of its tick).
    return {
        "events_dispatch_interval_s": 0,
        "scheduler_interval_s": 0,
        "hold_sweep_interval_s": 0,
        "interest_job_interval_s": 0,
        "idempotency_purge_interval_s": 0,
    }


class _Checkouts:
    """Counts the async engine's connection check-outs while inside the block."""

    def __init__(self, app: FastAPI) -> None:
        self.engine = app.state.db.engine.sync_engine
        self.seen: list[object] = []

    def _count(self, *args: object) -> None:
        self.seen.append(args)

    def __enter__(self) -> list[object]:
        event.listen(self.engine, "checkout", self._count)
        return self.seen

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "checkout", self._count)


async def test_an_idle_dispatcher_tick_takes_no_connection_of_the_async_engine(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    member = await make_member(client)
    await open_account(client, member, balance_minor=1_000)
    db = app.state.db
    http = dispatcher.http_client(db.settings)
    try:
        # The deposit's events get numbered: this tick has work, and takes connections.
        published, _ = await dispatcher.tick(db, http)
        assert published > 0
        with _Checkouts(app) as checkouts:
            assert await dispatcher.tick(db, http) == (0, 0)
        assert checkouts == []
    finally:
        await http.aclose()


async def test_an_idle_sealer_tick_takes_no_connection_of_the_async_engine(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await make_member(client)  # a sign-up is audited: a row to seal
    db = app.state.db
    await sealer.seal_once(db)  # the background sealer may have sealed it first
    with _Checkouts(app) as checkouts:
        assert await sealer.seal_once(db) == 0
    assert checkouts == []
