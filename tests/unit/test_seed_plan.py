"""The seed plan: decided by the seed alone, dated in the past, in time order."""

from __future__ import annotations

import datetime as dt

from banking.seed import make_plan

NOW = dt.datetime(2025, 3, 14, 15, 9, 26, tzinfo=dt.UTC)


class TestDeterminism:
    def test_the_same_seed_gives_the_same_plan(self) -> None:
        assert make_plan(users=8, months=3, seed=42, now=NOW) == make_plan(
            users=8, months=3, seed=42, now=NOW
        )

    def test_another_seed_gives_another_plan(self) -> None:
        first = make_plan(users=8, months=3, seed=42, now=NOW)
        second = make_plan(users=8, months=3, seed=43, now=NOW)
        assert first.people != second.people
        assert first.events != second.events


class TestShape:
    def test_events_are_in_time_order_within_the_months_asked_for(self) -> None:
        plan = make_plan(users=10, months=6, seed=7, now=NOW)
        times = [event.at for event in plan.events]
        assert times == sorted(times)
        assert plan.start == dt.datetime(2024, 10, 1, tzinfo=dt.UTC)
        assert plan.start <= times[0]
        assert times[-1] <= NOW

    def test_every_person_has_a_salary_rent_and_everyday_spending(self) -> None:
        plan = make_plan(users=5, months=2, seed=1, now=NOW)
        for person in plan.people:
            mine = [e for e in plan.events if e.person == person.index]
            texts = {e.description.split(":")[0] for e in mine}
            assert {"Opening deposit", "Salary", "Rent", "Groceries", "Bill"} <= texts
            assert all(isinstance(e.amount_minor, int) and e.amount_minor > 0 for e in mine)

    def test_people_send_money_to_each_other_and_to_savings(self) -> None:
        plan = make_plan(users=10, months=3, seed=3, now=NOW)
        transfers = [e for e in plan.events if e.kind == "transfer"]
        assert any(e.to_person != e.person for e in transfers)
        assert all(e.to_account == "savings" for e in transfers if e.to_person == e.person)
        assert len({p.email for p in plan.people}) == 10

    def test_purchases_name_their_merchant_for_card_payments(self) -> None:
        plan = make_plan(users=3, months=1, seed=5, now=NOW)
        spends = [e for e in plan.events if e.kind == "spend"]
        assert spends
        assert all(e.merchant and e.merchant in e.description for e in spends)
