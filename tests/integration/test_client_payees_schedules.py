"""The async client's payee, scheduled-transfer and batch calls against the real app."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from banking import client as bank
from banking.client import AsyncBankingClient
from banking.schedules import service as schedules
from tests.factories import PASSWORD


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"scheduler_interval_s": 0, "new_payee_limit_minor": 10_00}


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[AsyncBankingClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 52000))
    async with AsyncBankingClient("http://testserver", transport=transport) as api:
        yield api


async def member(api: AsyncBankingClient, funded: int = 0) -> tuple[str, bank.Account]:
    email = f"client-{uuid.uuid4().hex[:8]}@example.com"
    await api.signup(
        email, PASSWORD, first_name="Ada", last_name="Byron", date_of_birth="1985-12-10"
    )
    await api.login(email, PASSWORD)
    account = await api.open_account()
    if funded:
        await api.deposit(account.id, funded)
    return email, account


async def test_payee_schedule_and_batch_through_the_client(
    api: AsyncBankingClient, app: FastAPI
) -> None:
    _bob, bobs = await member(api)
    _alice, source = await member(api, funded=1_000_00)

    payee = await api.add_payee("Bob", bobs.number, nickname="B")
    assert payee.holder_name == "A*** B***"
    assert [item.id for item in await api.list_payees()] == [payee.id]
    with pytest.raises(bank.PayeeExists):
        await api.add_payee("Bob again", bobs.number)
    with pytest.raises(bank.NewPayeeLimit):
        await api.transfer(source.id, 10_01, payee_id=payee.id)
    sent = await api.transfer(source.id, 10_00, payee_id=payee.id)
    assert sent.status == "posted"

    first = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    order = await api.schedule_transfer(
        source.id,
        5_00,
        first_run_at=first,
        frequency="monthly",
        target_account_number=bobs.number,
        description="Rent",
    )
    assert order.next_run_at == first
    await schedules.run_due(app.state.db, now=first)
    ran = await api.get_scheduled_transfer(order.id)
    assert ran.last_result == "posted"
    assert [run["status"] for run in ran.runs] == ["posted"]
    moved = await api.update_scheduled_transfer(order.id, amount=6_00)
    assert moved.amount == 6_00
    assert (await api.cancel_scheduled_transfer(order.id)).status == "cancelled"
    with pytest.raises(bank.ScheduleNotActive):
        await api.cancel_scheduled_transfer(order.id)

    items = [{"source_account_id": source.id, "payee_id": payee.id, "amount": 1_00}] * 3
    batch = await api.transfer_batch(items, mode="all_or_nothing", idempotency_key="b-1")
    assert (batch.status, batch.posted) == ("completed", 3)
    replay = await api.transfer_batch(items, mode="all_or_nothing", idempotency_key="b-1")
    assert replay.replayed
    with pytest.raises(bank.BatchRejected) as rejected:
        await api.transfer_batch(
            [*items, {"source_account_id": source.id, "payee_id": payee.id, "amount": 10**7}],
            mode="all_or_nothing",
        )
    assert rejected.value.body["failed_item_index"] == 3
    balance = await api.balance(source.id)
    assert balance.balance == 1_000_00 - 10_00 - 5_00 - 3_00
