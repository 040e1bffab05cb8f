"""The async client against the real app in-process (ASGITransport): the auth calls."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from banking import client as bank
from banking.client import AsyncBankingClient
from tests.conftest import TEST_SECRETS
from tests.factories import PASSWORD


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(app: FastAPI, clock: Clock) -> AsyncIterator[AsyncBankingClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 52000))
    async with AsyncBankingClient("http://testserver", transport=transport, clock=clock) as api:
        yield api


async def sign_up(api: AsyncBankingClient, email: str | None = None) -> bank.User:
    return await api.signup(
        email or f"client-{uuid.uuid4().hex[:8]}@example.com",
        PASSWORD,
        first_name="Grace",
        last_name="Hopper",
        date_of_birth="1985-12-09",
    )


class TestSignupAndLogin:
    async def test_signup_returns_the_member_and_login_keeps_the_tokens(
        self, api: AsyncBankingClient
    ) -> None:
        user = await sign_up(api)
        assert user.role == "member"
        tokens = await api.login(user.email, PASSWORD)
        assert tokens.token_type == "bearer"
        assert tokens.expires_in > 0
        assert api.access_token == tokens.access_token

    async def test_a_taken_email_raises_email_taken(self, api: AsyncBankingClient) -> None:
        user = await sign_up(api)
        with pytest.raises(bank.EmailTaken) as caught:
            await sign_up(api, user.email)
        assert caught.value.status == 409
        assert caught.value.request_id

    async def test_a_wrong_password_raises_invalid_credentials(
        self, api: AsyncBankingClient
    ) -> None:
        user = await sign_up(api)
        with pytest.raises(bank.InvalidCredentials):
            await api.login(user.email, PASSWORD + "x")

    async def test_invalid_fields_are_listed(self, api: AsyncBankingClient) -> None:
        with pytest.raises(bank.ValidationFailed) as caught:
            await api.signup(
                "not-an-email", PASSWORD, first_name="A", last_name="B", date_of_birth="1990-01-01"
            )
        assert [error.field for error in caught.value.errors] == ["email"]


class TestSessions:
    async def test_sessions_list_the_current_one_and_revoke_another(
        self, api: AsyncBankingClient, app: FastAPI
    ) -> None:
        user = await sign_up(api)
        await api.login(user.email, PASSWORD)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 52001))
        async with AsyncBankingClient("http://testserver", transport=transport) as phone:
            await phone.login(user.email, PASSWORD)
            sessions = await api.sessions()
            assert len(sessions) == 2
            assert [s.current for s in sessions].count(True) == 1
            other = next(s for s in sessions if not s.current)
            await api.revoke_session(other.id)
            # The phone's access token dies at once and its refresh token with it.
            with pytest.raises(bank.Unauthorized):
                await phone.sessions()
        assert [s.id for s in await api.sessions()] != [other.id]

    async def test_logout_ends_the_session_and_forgets_the_tokens(
        self, api: AsyncBankingClient
    ) -> None:
        user = await sign_up(api)
        await api.login(user.email, PASSWORD)
        await api.logout()
        assert api.access_token is None
        with pytest.raises(bank.InvalidToken):
            await api.sessions()


class TestTokenRefresh:
    async def test_an_expiring_token_is_refreshed_before_the_next_call(
        self, api: AsyncBankingClient, clock: Clock
    ) -> None:
        user = await sign_up(api)
        tokens = await api.login(user.email, PASSWORD)
        clock.now += tokens.expires_in
        assert len(await api.sessions()) == 1
        assert api.refresh_token != tokens.refresh_token

    async def test_a_rejected_access_token_is_refreshed_once(
        self, api: AsyncBankingClient, app: FastAPI
    ) -> None:
        user = await sign_up(api)
        tokens = await api.login(user.email, PASSWORD)
        api.set_tokens(bank.Tokens("not-a-jwt", tokens.refresh_token, "bearer", tokens.expires_in))
        assert len(await api.sessions()) == 1
        assert api.access_token not in {"not-a-jwt", tokens.access_token}

    async def test_a_reused_refresh_token_is_refused(self, api: AsyncBankingClient) -> None:
        user = await sign_up(api)
        tokens = await api.login(user.email, PASSWORD)
        await api.refresh()
        with pytest.raises(bank.InvalidRefreshToken):
            await api.refresh(tokens.refresh_token)


class TestHealth:
    async def test_health_reports_ready(self, api: AsyncBankingClient) -> None:
        assert (await api.health())["status"] == "ok"

    async def test_an_endpoint_that_does_not_exist_raises_not_found(
        self, api: AsyncBankingClient
    ) -> None:
        user = await sign_up(api)
        await api.login(user.email, PASSWORD)
        with pytest.raises(bank.NotFound):
            await api.get_account(str(uuid.uuid4()))


async def member(api: AsyncBankingClient) -> bank.User:
    user = await sign_up(api)
    await api.login(user.email, PASSWORD)
    return user


@pytest.fixture
async def other(app: FastAPI) -> AsyncIterator[AsyncBankingClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.11", 52002))
    async with AsyncBankingClient("http://testserver", transport=transport) as other:
        yield other


class TestIdentityExtras:
    async def test_me_returns_the_user_with_the_holder_profile(
        self, api: AsyncBankingClient
    ) -> None:
        user = await member(api)
        me = await api.me()
        assert (me.id, me.email, me.role) == (user.id, user.email, "member")
        assert me.profile is not None
        assert (me.profile.first_name, me.profile.last_name) == ("Grace", "Hopper")
        holder = await api.holder()
        assert holder == me.profile.__class__.from_json(holder.raw)
        assert holder.date_of_birth == "1985-12-09"

    async def test_the_profile_can_be_updated(self, api: AsyncBankingClient) -> None:
        await member(api)
        holder = await api.update_holder(phone="+14155550100")
        assert holder.phone == "+14155550100"
        assert (await api.holder()).phone == "+14155550100"


class TestAccounts:
    async def test_an_opened_account_is_listed_with_zero_balances(
        self, api: AsyncBankingClient
    ) -> None:
        await member(api)
        checking = await api.open_account("checking", "USD")
        savings = await api.open_account("savings", "USD")
        assert (checking.type, checking.currency, checking.status) == ("checking", "USD", "active")
        assert (checking.balance, checking.available_balance, checking.held) == (0, 0, 0)
        assert len(checking.number) == 12
        assert [a.id for a in await api.list_accounts()] == [checking.id, savings.id]
        assert (await api.get_account(savings.id)).number == savings.number

    async def test_another_members_account_is_not_found(
        self, api: AsyncBankingClient, other: AsyncBankingClient
    ) -> None:
        await member(api)
        await member(other)
        theirs = await other.open_account()
        with pytest.raises(bank.NotFound):
            await api.get_account(theirs.id)
        with pytest.raises(bank.NotFound):
            await api.deposit(theirs.id, 100)


class TestMoney:
    async def test_deposit_withdraw_and_balances_agree(self, api: AsyncBankingClient) -> None:
        await member(api)
        account = await api.open_account()
        deposit = await api.deposit(account.id, 120_00, description="Salary")
        assert (deposit.kind, deposit.status, deposit.amount) == ("deposit", "posted", 120_00)
        assert (deposit.account_id, deposit.currency, deposit.balance_after) == (
            account.id,
            "USD",
            120_00,
        )
        assert deposit.description == "Salary"
        assert deposit.created_at is not None
        assert not deposit.replayed
        withdrawal = await api.withdraw(account.id, 20_00)
        assert (withdrawal.kind, withdrawal.amount, withdrawal.balance_after) == (
            "withdrawal",
            -20_00,
            100_00,
        )
        balance = await api.balance(account.id, verify=True)
        assert (balance.balance, balance.available_balance, balance.currency) == (
            100_00,
            100_00,
            "USD",
        )
        assert balance.computed_balance == 100_00
        assert balance.consistent is True
        snapshot = await api.all_balances()
        assert [(b.account_id, b.number, b.balance) for b in snapshot] == [
            (account.id, account.number, 100_00)
        ]

    async def test_a_transfer_between_own_accounts(self, api: AsyncBankingClient) -> None:
        await member(api)
        checking, savings = await api.open_account(), await api.open_account("savings")
        await api.deposit(checking.id, 50_00)
        moved = await api.transfer(checking.id, 30_00, target_account_id=savings.id)
        assert (moved.kind, moved.status, moved.amount, moved.balance_after) == (
            "transfer",
            "posted",
            30_00,
            20_00,
        )
        assert (moved.source_account_id, moved.target_account_id) == (checking.id, savings.id)
        assert (await api.balance(savings.id)).balance == 30_00

    async def test_a_transfer_by_number_after_looking_up_the_payee(
        self, api: AsyncBankingClient, other: AsyncBankingClient
    ) -> None:
        await member(api)
        await sign_up_as(other, "Alan", "Turing")
        mine, theirs = await api.open_account(), await other.open_account()
        await api.deposit(mine.id, 50_00)
        payee = await api.lookup_account(theirs.number)
        assert (payee.number, payee.currency) == (theirs.number, "USD")
        assert payee.holder_name.startswith("A")
        assert "Turing" not in payee.holder_name
        moved = await api.transfer(mine.id, 12_34, target_account_number=theirs.number)
        # Someone else's account: its id stays hidden and its number masked.
        assert moved.target_account_id is None
        assert moved.target_account_number is not None
        assert moved.target_account_number.endswith(theirs.number[-4:])
        assert theirs.number not in moved.target_account_number
        assert (await other.balance(theirs.id)).balance == 12_34

    async def test_a_retry_with_the_same_key_is_replayed_and_moves_money_once(
        self, api: AsyncBankingClient, other: AsyncBankingClient
    ) -> None:
        await member(api)
        await member(other)
        mine, theirs = await api.open_account(), await other.open_account()
        await api.deposit(mine.id, 50_00)
        first = await api.transfer(mine.id, 10_00, target_account_number=theirs.number)
        again = await api.transfer(
            mine.id,
            10_00,
            target_account_number=theirs.number,
            idempotency_key=first.idempotency_key,
        )
        assert first.idempotency_key is not None
        assert (first.replayed, again.replayed) == (False, True)
        assert again.id == first.id
        assert again.raw == first.raw
        assert (await api.balance(mine.id)).balance == 40_00
        with pytest.raises(bank.IdempotencyKeyReused):
            await api.transfer(
                mine.id,
                11_00,
                target_account_number=theirs.number,
                idempotency_key=first.idempotency_key,
            )

    async def test_an_overdraft_is_declined_and_recorded(self, api: AsyncBankingClient) -> None:
        await member(api)
        account = await api.open_account()
        await api.deposit(account.id, 5_00)
        with pytest.raises(bank.InsufficientFunds) as caught:
            await api.withdraw(account.id, 5_01)
        assert (caught.value.status, caught.value.code) == (409, "insufficient_funds")
        assert caught.value.body["entry_id"]
        assert isinstance(caught.value, bank.Declined)
        declined = await api.transactions_page(account.id, status="declined")
        assert [(t.id, t.status, t.decline_reason) for t in declined.items] == [
            (caught.value.body["entry_id"], "declined", "insufficient_funds")
        ]
        assert (await api.balance(account.id)).balance == 5_00


class TestTransactions:
    async def test_history_is_paged_newest_first_until_the_last_page(
        self, api: AsyncBankingClient
    ) -> None:
        await member(api)
        account = await api.open_account()
        for amount in (1_00, 2_00, 3_00, 4_00, 5_00):
            await api.deposit(account.id, amount, description=f"deposit {amount}")
        first = await api.transactions_page(account.id, limit=2)
        assert [t.amount for t in first.items] == [5_00, 4_00]
        assert first.next_cursor is not None
        walked = [t async for t in api.transactions(account.id, limit=2)]
        assert [t.amount for t in walked] == [5_00, 4_00, 3_00, 2_00, 1_00]
        assert [t.balance_after for t in walked] == [15_00, 10_00, 6_00, 3_00, 1_00]
        assert {(t.kind, t.status, t.currency) for t in walked} == {("deposit", "posted", "USD")}
        with pytest.raises(bank.InvalidRequest) as caught:
            await api.transactions_page(account.id, cursor="not-a-cursor")
        assert caught.value.code == "invalid_cursor"


async def sign_up_as(api: AsyncBankingClient, first: str, last: str) -> bank.User:
    user = await api.signup(
        f"{first.lower()}-{uuid.uuid4().hex[:8]}@example.com",
        PASSWORD,
        first_name=first,
        last_name=last,
        date_of_birth="1980-06-23",
    )
    await api.login(user.email, PASSWORD)
    return user


class TestStaff:
    async def test_an_admin_finds_freezes_and_unfreezes_an_account(
        self, api: AsyncBankingClient, other: AsyncBankingClient, app: FastAPI
    ) -> None:
        from banking.identity import service as identity
        from banking.identity.models import Role

        user = await member(api)
        account = await api.open_account()
        await api.deposit(account.id, 10_00)
        admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        async with app.state.db.sessionmaker() as session:
            await identity.create_user(
                session, email=admin_email, password=PASSWORD, role=Role.admin
            )
        await other.login(admin_email, PASSWORD)
        found = await other.admin_accounts_page(number=account.number)
        assert [(a.id, a.owner_id) for a in found.items] == [(account.id, user.id)]
        frozen = await other.freeze_account(account.id, reason="Suspicious activity")
        assert frozen.status == "frozen"
        with pytest.raises(bank.AccountFrozen):
            await api.withdraw(account.id, 1_00)
        with pytest.raises(bank.AccountStatusConflict):
            await other.freeze_account(account.id)
        asked = await other.unfreeze_account(account.id, reason="Owner verified")
        assert (asked["kind"], asked["status"]) == ("account_unfreeze", "pending_approval")
        with pytest.raises(bank.Conflict) as twice:
            await other.unfreeze_account(account.id)
        assert twice.value.code == "approval_already_pending"
        with pytest.raises(bank.Conflict) as own:
            await other.approve(asked["id"])
        assert own.value.code == "self_approval"
        checker_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        async with app.state.db.sessionmaker() as session:
            await identity.create_user(
                session, email=checker_email, password=PASSWORD, role=Role.admin
            )
        await api.login(checker_email, PASSWORD)
        assert (await api.approve(asked["id"]))["status"] == "executed"
        assert (await other.admin_account(account.id)).status == "active"
        lowered = await other.set_daily_limit(account.id, 5_00, reason="Owner asked")
        assert not lowered.pending
        assert lowered.account is not None
        assert lowered.account.daily_outgoing_limit == 5_00
        raised = await other.set_daily_limit(account.id, 10**12, reason="Business account")
        assert raised.pending
        assert raised.approval is not None
        assert raised.approval["kind"] == "daily_limit_raise"
        await api.approve(raised.approval["id"])
        assert (await other.admin_account(account.id)).daily_outgoing_limit == 10**12
        await api.login(user.email, PASSWORD)
        events = await other.audit_page(event_type="account.frozen")
        assert [e.target_id for e in events.items] == [account.id]
        holders = await other.admin_holders_page(email=user.email)
        assert [h.user_id for h in holders.items] == [user.id]
        with pytest.raises(bank.InsufficientRole):
            await api.admin_accounts_page()


@pytest.fixture
async def network(app: FastAPI) -> AsyncIterator[AsyncBankingClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.12", 52003))
    async with AsyncBankingClient(
        "http://testserver", transport=transport, network_key=TEST_SECRETS["card_network_api_key"]
    ) as network:
        yield network


async def pay(
    network: AsyncBankingClient, issued: bank.IssuedCard, amount: int
) -> bank.Authorization:
    return await network.authorize_card(
        card_number=issued.pan,
        exp_month=issued.card.exp_month,
        exp_year=issued.card.exp_year,
        cvv=issued.cvv,
        amount=amount,
        currency="USD",
        merchant_name="Corner Bookshop",
        merchant_category="5942",
    )


class TestCards:
    async def test_an_issued_card_is_listed_without_its_number_and_can_be_frozen(
        self, api: AsyncBankingClient
    ) -> None:
        await member(api)
        account = await api.open_account()
        issued = await api.issue_card(account.id, "physical")
        assert issued.pan.endswith(issued.card.last4)
        assert len(issued.cvv) in (3, 4)
        (listed,) = await api.list_cards()
        assert (listed.id, listed.account_id, listed.type) == (
            issued.card.id,
            account.id,
            "physical",
        )
        assert "pan" not in listed.raw
        assert (await api.freeze_card(listed.id)).status == "frozen"
        assert (await api.unfreeze_card(listed.id)).status == "active"

    async def test_limits_are_set_kept_and_removed(self, api: AsyncBankingClient) -> None:
        await member(api)
        account = await api.open_account()
        card = (await api.issue_card(account.id)).card
        assert (card.per_transaction_limit, card.daily_limit) == (None, None)
        card = await api.set_card_limits(card.id, per_transaction=25_00, daily=80_00)
        assert (card.per_transaction_limit, card.daily_limit, card.currency) == (
            25_00,
            80_00,
            "USD",
        )
        card = await api.set_card_limits(card.id, daily=90_00)
        assert (card.per_transaction_limit, card.daily_limit) == (25_00, 90_00)
        card = await api.set_card_limits(card.id, remove=["per_transaction"])
        assert (card.per_transaction_limit, card.daily_limit) == (None, 90_00)

    async def test_the_cards_payments_are_listed_newest_first(
        self, api: AsyncBankingClient, network: AsyncBankingClient
    ) -> None:
        await member(api)
        account = await api.open_account()
        await api.deposit(account.id, 100_00)
        issued = await api.issue_card(account.id)
        await api.set_card_limits(issued.card.id, per_transaction=20_00)
        approved = await pay(network, issued, 12_50)
        declined = await pay(network, issued, 30_00)
        assert (approved.status, declined.status) == ("approved", "declined")
        page = await api.card_authorizations(issued.card.id)
        assert [(a.status, a.amount) for a in page.items] == [
            ("declined", 30_00),
            ("approved", 12_50),
        ]
        assert page.items[1].id == approved.id
        assert page.items[0].decline_reason == "card_transaction_limit_exceeded"
        assert page.next_cursor is None

    async def test_another_members_card_is_not_found(
        self, api: AsyncBankingClient, other: AsyncBankingClient
    ) -> None:
        await member(api)
        await member(other)
        theirs = (await other.issue_card((await other.open_account()).id)).card
        with pytest.raises(bank.NotFound):
            await api.freeze_card(theirs.id)
        with pytest.raises(bank.NotFound):
            await api.card_authorizations(theirs.id)


class TestStatements:
    async def test_a_month_is_listed_shown_and_downloaded(
        self, api: AsyncBankingClient, network: AsyncBankingClient
    ) -> None:
        await member(api)
        account = await api.open_account()
        await api.deposit(account.id, 12_34)
        await api.withdraw(account.id, 2_00)
        await pay(network, await api.issue_card(account.id), 3_21)
        (month,) = await api.statements(account.id)
        assert month["is_partial"] is True
        statement = await api.statement(account.id, month["month"])
        assert (statement.opening_balance, statement.closing_balance) == (0, 10_34)
        assert (statement.total_credits, statement.total_debits) == (12_34, 2_00)
        assert [line["amount"] for line in statement.lines] == [12_34, -2_00]
        assert [hold["amount"] for hold in statement.pending_holds] == [3_21]
        csv = await api.statement_csv(account.id, month["month"])
        assert len(csv.strip().splitlines()) == 3
        assert (await api.statement_pdf(account.id, month["month"])).startswith(b"%PDF")


class TestHistoryAndBalanceAt:
    async def test_balance_at_an_instant_daily_closings_and_history_filters(
        self, api: AsyncBankingClient, other: AsyncBankingClient
    ) -> None:
        await member(api)
        account = await api.open_account()
        await api.deposit(account.id, 50_00, description="Salary")
        await sign_up_as(other, "Alan", "Turing")
        theirs = await other.open_account()
        await other.deposit(theirs.id, 40_00)
        await other.transfer(theirs.id, 15_00, target_account_number=account.number)
        now = dt.datetime.now(dt.UTC)
        at_now = await api.balance(account.id, at=now)
        assert (at_now.balance, at_now.held, at_now.at) == (65_00, 0, now)
        before = await api.balance(account.id, at=now - dt.timedelta(days=1))
        assert before.balance == 0
        with pytest.raises(ValueError, match="time zone"):
            await api.balance(account.id, at=dt.datetime(2026, 1, 1))
        with pytest.raises(bank.InvalidRequest) as refused:
            await api.balance(account.id, at=now + dt.timedelta(days=1))
        assert refused.value.code == "at_in_future"
        today = now.date()
        closings = await api.balance_history(
            account.id, date_from=today - dt.timedelta(days=1), date_to=today
        )
        assert (closings.account_id, closings.currency) == (account.id, "USD")
        assert closings.items == [
            bank.BalancePoint(today - dt.timedelta(days=1), 0),
            bank.BalancePoint(today, 65_00),
        ]
        page = await api.transactions_page(account.id, q="turing", min_amount=10_00)
        assert [(t.amount, t.counterparty_name) for t in page.items] == [(15_00, "Alan Turing")]
        everything = [t async for t in api.transactions(account.id, limit=1, max_amount=50_00)]
        assert [t.amount for t in everything] == [15_00, 50_00]
        assert everything[1].counterparty_name is None
