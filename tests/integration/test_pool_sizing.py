"""The README's PostgreSQL sizing: one API process opens at most
`DB_POOL_SIZE + min(max(DB_POOL_SIZE, 2), 8)` connections (the main pool and the read
pool), and under load it does open more than `DB_POOL_SIZE`."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from banking.core.db import connections_per_process
from tests.databases import ON_POSTGRES
from tests.factories import make_member, open_account

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL connection pools")
POOL = 3


@pytest.mark.parametrize("settings_overrides", [{"db_pool_size": POOL}], indirect=True)
async def test_one_process_opens_both_pools_and_no_more(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    member = await make_member(client)
    account = await open_account(client, member, balance_minor=1_000_00)
    url = make_url(database_url)
    watcher = await asyncpg.connect(
        user=url.username, host=url.host, port=url.port, database="postgres"
    )
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            count = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", url.database
            )
            peak = max(peak, int(count))
            await asyncio.sleep(0.005)

    async def load() -> None:
        async def one(index: int) -> None:
            path = f"/v1/accounts/{account['id']}"
            await client.get(path + "/balance" if index % 2 else path, headers=member.headers)

        for _ in range(5):
            await asyncio.gather(*(one(index) for index in range(24)))
        done.set()

    try:
        await asyncio.gather(watch(), load())
    finally:
        await watcher.close()
    assert peak > POOL, peak
    assert peak <= connections_per_process(app.state.settings) == POOL + POOL, peak
