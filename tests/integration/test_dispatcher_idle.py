"""The dispatcher's tick, run every EVENTS_DISPATCH_INTERVAL_S in every process, asks
whether there is anything to do on the read path (events/dispatcher.py): a tick with
nothing to do checks out no connection of the async engine, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from banking.events import dispatcher
from tests.factories import make_member, open_account

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # No background job runs meanwhile: every checkout counted is the tick's.
    return {
        "events_dispatch_interval_s": 0,
        "scheduler_interval_s": 0,
        "hold_sweep_interval_s": 0,
        "interest_job_interval_s": 0,
        "idempotency_purge_interval_s": 0,
    }


async def test_an_idle_tick_takes_no_connection_of_the_async_engine(
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
        checkouts: list[object] = []

        def count(*_args: object) -> None:
            checkouts.append(_args)

        event.listen(db.engine.sync_engine, "checkout", count)
        try:
            assert await dispatcher.tick(db, http) == (0, 0)
        finally:
            event.remove(db.engine.sync_engine, "checkout", count)
        assert checkouts == []
    finally:
        await http.aclose()
