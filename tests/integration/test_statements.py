"""Monthly statements over a generated multi-month history, on both databases."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfReader

from banking.ledger import service as ledger
from banking.ledger.models import EntryKind
from banking.statements import render
from tests.factories import Member, make_member, open_account

NEW_YORK = {"bank_timezone": "America/New_York", "bank_name": "Harbour Bank"}
# The tests' "now": March 2024 is the current month (a statement to date), April the future.
NOW = dt.datetime(2024, 3, 20, 15, 30, tzinfo=dt.UTC)
FIRST_MONTH, LAST_MONTH = "2023-09", "2024-03"
QUIET_MONTH = "2023-12"  # nothing moves in this month: its statement is empty


def months_between(first: str, last: str) -> Iterator[str]:
    year, month = int(first[:4]), int(first[5:])
    while f"{year:04d}-{month:02d}" <= last:
        yield f"{year:04d}-{month:02d}"
        year, month = year + month // 12, month % 12 + 1


@dataclass
class History:
    """Two members' accounts and every posted movement's time, for the expectations."""

    owner: Member
    other: Member
    account: dict[str, Any]
    peer: dict[str, Any]
    times: list[dt.datetime] = field(default_factory=list)


# Around midnight UTC on the 1st: in New York the first three are still the previous month.
BOUNDARY_MOMENTS = frozenset(
    {
        dt.datetime(2023, 11, 1, 3, 0, tzinfo=dt.UTC),
        dt.datetime(2023, 11, 1, 4, 30, tzinfo=dt.UTC),
        dt.datetime(2023, 10, 31, 23, 59, 59, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 1, 3, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 1, 5, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 1, 4, 59, 59, tzinfo=dt.UTC),
    }
)


def _moments(rng: random.Random) -> list[dt.datetime]:
    """Times from October 2023 to mid-March 2024 (UTC), dense in January, none in
    December, and several within a few hours of the month boundaries."""
    moments: list[dt.datetime] = []
    for month in ("2023-10", "2023-11", "2024-01", "2024-02", "2024-03"):
        year, number = int(month[:4]), int(month[5:])
        count = 70 if month == "2024-01" else 12
        last_day = 15 if month == "2024-03" else 28
        for _ in range(count):
            day = rng.randint(2, last_day)
            moments.append(
                dt.datetime(
                    year, number, day, rng.randint(0, 23), rng.randint(0, 59), tzinfo=dt.UTC
                )
            )
    return sorted([*moments, *BOUNDARY_MOMENTS])


async def generate_history(client: httpx.AsyncClient, app: FastAPI, seed: int = 7) -> History:
    """Deposits, withdrawals and transfers both ways, posted through the ledger with the
    clock set to each movement's time, in time order, so every invariant holds."""
    owner, other = await make_member(client), await make_member(client)
    account = await open_account(client, owner)
    peer = await open_account(client, other)
    history = History(owner=owner, other=other, account=account, peer=peer)
    rng = random.Random(seed)
    ids = {"account": uuid.UUID(account["id"]), "peer": uuid.UUID(peer["id"])}
    balances = {"account": 0, "peer": 0}
    cash = ledger.cash_account_id("USD")
    for index, when in enumerate(_moments(rng)):
        choice = rng.random()
        amount = rng.randint(1, 400_00)
        side = "account" if rng.random() < 0.75 or when in BOUNDARY_MOMENTS else "peer"
        other_side = "peer" if side == "account" else "account"
        if index < 2 or choice < 0.4 or balances[side] < amount:
            kind, source, target = EntryKind.deposit, cash, ids[side]
            balances[side] += amount
            description = f"Salary part {index}"
        elif choice < 0.7:
            kind, source, target = EntryKind.withdrawal, ids[side], cash
            balances[side] -= amount
            description = None
        else:
            kind, source, target = EntryKind.transfer, ids[side], ids[other_side]
            balances[side] -= amount
            balances[other_side] += amount
            description = f'Rent, "flat {index}"'
        result = await ledger.post(
            app.state.db,
            ledger.Movement(
                kind=kind,
                source_account_id=source,
                target_account_id=target,
                origin_account_id=ids[side],
                amount_minor=amount,
                currency="USD",
                description=description,
            ),
            now=when,
        )
        assert result.outcome is not None
        assert result.outcome.posted
        if side == "account" or kind is EntryKind.transfer:
            history.times.append(when)
    app.state.clock = lambda: NOW
    return history


async def statement(
    client: httpx.AsyncClient, member: Member, account: dict[str, Any], month: str, **params: str
) -> httpx.Response:
    return await client.get(
        f"/v1/accounts/{account['id']}/statements/{month}", params=params, headers=member.headers
    )


async def statement_json(
    client: httpx.AsyncClient, member: Member, account: dict[str, Any], month: str
) -> dict[str, Any]:
    response = await statement(client, member, account, month)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_consistent(body: dict[str, Any]) -> None:
    lines = body["lines"]
    assert body["count"] == len(lines)
    credits = sum(line["amount"] for line in lines if line["amount"] > 0)
    debits = -sum(line["amount"] for line in lines if line["amount"] < 0)
    assert (body["total_credits"], body["total_debits"]) == (credits, debits)
    assert body["opening_balance"] + credits - debits == body["closing_balance"]
    running = body["opening_balance"]
    for line in lines:
        running += line["amount"]
        assert line["balance_after"] == running
    times = [line["created_at"] for line in lines]
    assert times == sorted(times)


class TestEveryMonthOfAGeneratedHistory:
    @pytest.mark.parametrize("settings_overrides", [{}, NEW_YORK], indirect=True)
    async def test_balances_chain_from_month_to_month_and_totals_add_up(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        zone = ZoneInfo(app.state.settings.bank_timezone)
        previous_closing = 0
        seen_lines = 0
        for month in months_between(FIRST_MONTH, LAST_MONTH):
            body = await statement_json(client, history.owner, history.account, month)
            assert_consistent(body)
            assert body["opening_balance"] == previous_closing, month
            previous_closing = body["closing_balance"]
            seen_lines += body["count"]
            expected = sum(1 for when in history.times if f"{when.astimezone(zone):%Y-%m}" == month)
            assert body["count"] == expected, month
            assert body["period"]["month"] == month
            assert body["period"]["timezone"] == zone.key
            assert body["is_partial"] is (month == LAST_MONTH)
            assert body["title"] == (
                "Statement to date" if month == LAST_MONTH else "Monthly statement"
            )
            assert body["pending_holds"] == []
        assert seen_lines == len(history.times)
        balance = await client.get(
            f"/v1/accounts/{history.account['id']}/balance", headers=history.owner.headers
        )
        assert previous_closing == balance.json()["balance"]

    async def test_a_quiet_month_has_no_lines_and_opens_at_its_close(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        november = await statement_json(client, history.owner, history.account, "2023-11")
        quiet = await statement_json(client, history.owner, history.account, QUIET_MONTH)
        assert quiet["lines"] == []
        assert quiet["count"] == 0
        assert quiet["total_credits"] == quiet["total_debits"] == 0
        assert quiet["opening_balance"] == quiet["closing_balance"]
        assert quiet["opening_balance"] == november["closing_balance"] > 0
        before = await statement_json(client, history.owner, history.account, "2020-02")
        assert (before["opening_balance"], before["closing_balance"], before["count"]) == (0, 0, 0)

    async def test_lines_name_the_counterparty_and_mask_account_numbers(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        body = await statement_json(client, history.owner, history.account, "2024-01")
        counterparties = {line["counterparty"] for line in body["lines"]}
        masked_peer = "********" + history.peer["number"][-4:]
        assert counterparties <= {"Cash", masked_peer}
        assert {"Cash", masked_peer} <= counterparties
        assert body["account"]["number"] == "********" + history.account["number"][-4:]
        assert body["account"]["holder_name"] == "Ada Lovelace"
        assert (body["account"]["type"], body["account"]["currency"]) == ("checking", "USD")
        kinds = {line["kind"] for line in body["lines"]}
        assert {"deposit", "withdrawal", "transfer"} <= kinds
        withdrawal = next(line for line in body["lines"] if line["kind"] == "withdrawal")
        assert withdrawal["description"] == "Withdrawal"
        assert withdrawal["amount"] < 0


class TestMonthBoundariesInTheBankTimeZone:
    @pytest.mark.parametrize("settings_overrides", [NEW_YORK], indirect=True)
    async def test_three_in_the_morning_utc_on_the_first_belongs_to_the_previous_month(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        january = await statement_json(client, history.owner, history.account, "2024-01")
        february = await statement_json(client, history.owner, history.account, "2024-02")
        january_times = {line["created_at"] for line in january["lines"]}
        february_times = {line["created_at"] for line in february["lines"]}
        assert "2024-02-01T03:00:00Z" in january_times
        assert "2024-02-01T05:00:01Z" in february_times
        last = next(line for line in january["lines"] if line["created_at"].startswith("2024-02"))
        assert last["date"] == "2024-01-31"
        # Winter: New York is UTC-5, so February starts at 05:00 UTC.
        assert february["period"]["starts_at"] == "2024-02-01T05:00:00Z"
        assert january["period"]["ends_at"] == "2024-02-01T05:00:00Z"
        # Daylight saving time starts on 10 March: April starts at 04:00 UTC.
        march = await statement_json(client, history.owner, history.account, "2024-03")
        assert march["period"]["ends_at"] == "2024-04-01T04:00:00Z"
        assert (march["period"]["start_date"], march["period"]["end_date"]) == (
            "2024-03-01",
            "2024-03-31",
        )

    @pytest.mark.parametrize("settings_overrides", [NEW_YORK], indirect=True)
    async def test_the_months_list_follows_the_bank_time_zone(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        zone = ZoneInfo("America/New_York")
        expected = sorted({f"{when.astimezone(zone):%Y-%m}" for when in history.times})[::-1]
        response = await client.get(
            f"/v1/accounts/{history.account['id']}/statements", headers=history.owner.headers
        )
        assert response.status_code == 200
        body = response.json()
        assert [item["month"] for item in body["items"]] == expected
        assert QUIET_MONTH not in expected
        assert "2023-10" in expected
        assert body["items"][0] == {"month": "2024-03", "is_partial": True}
        assert body["next_cursor"] is None


class TestTheMonthsList:
    async def test_pages_newest_first_with_a_cursor(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        url = f"/v1/accounts/{history.account['id']}/statements"
        first = await client.get(url, params={"limit": 2}, headers=history.owner.headers)
        assert [item["month"] for item in first.json()["items"]] == ["2024-03", "2024-02"]
        cursor = first.json()["next_cursor"]
        assert cursor
        second = await client.get(
            url, params={"limit": 2, "cursor": cursor}, headers=history.owner.headers
        )
        assert [item["month"] for item in second.json()["items"]] == ["2024-01", "2023-11"]
        third = await client.get(
            url,
            params={"limit": 2, "cursor": second.json()["next_cursor"]},
            headers=history.owner.headers,
        )
        assert [item["month"] for item in third.json()["items"]] == ["2023-10"]
        assert third.json()["next_cursor"] is None

    async def test_an_account_without_postings_lists_no_month(
        self, client: httpx.AsyncClient
    ) -> None:
        owner = await make_member(client)
        account = await open_account(client, owner)
        response = await client.get(
            f"/v1/accounts/{account['id']}/statements", headers=owner.headers
        )
        assert response.json() == {"items": [], "next_cursor": None}

    async def test_a_foreign_cursor_is_refused(self, client: httpx.AsyncClient) -> None:
        owner = await make_member(client)
        account = await open_account(client, owner)
        response = await client.get(
            f"/v1/accounts/{account['id']}/statements",
            params={"cursor": "WyJub3QtYS1tb250aCJd"},
            headers=owner.headers,
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_cursor"


class TestWhoMayReadAStatement:
    async def test_another_members_account_is_not_found(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        for path in ("statements", "statements/2024-01", "statements/2024-01?format=pdf"):
            response = await client.get(
                f"/v1/accounts/{history.account['id']}/{path}", headers=history.other.headers
            )
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"
        unknown = await statement(client, history.owner, {"id": str(uuid.uuid4())}, "2024-01")
        assert unknown.status_code == 404


class TestWhichMonthsExist:
    @pytest.mark.parametrize(
        "month", ["2024-13", "2024-00", "2024-1", "24-01", "2024-01-01", "abcd-ef", "1899-12"]
    )
    async def test_a_malformed_month_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, month: str
    ) -> None:
        owner = await make_member(client)
        account = await open_account(client, owner)
        response = await statement(client, owner, account, month)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_month"

    async def test_a_month_that_has_not_started_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        owner = await make_member(client)
        account = await open_account(client, owner)
        app.state.clock = lambda: NOW
        for month in ("2024-04", "2031-01"):
            response = await statement(client, owner, account, month)
            assert response.status_code == 422
            assert response.json()["code"] == "month_in_future"
        current = await statement(client, owner, account, "2024-03")
        assert current.status_code == 200
        assert current.json()["is_partial"] is True

    @pytest.mark.parametrize("settings_overrides", [NEW_YORK], indirect=True)
    async def test_the_current_month_is_the_bank_time_zones_month(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        owner = await make_member(client)
        account = await open_account(client, owner)
        # 02:00 UTC on 1 April is still 31 March in New York.
        app.state.clock = lambda: dt.datetime(2024, 4, 1, 2, 0, tzinfo=dt.UTC)
        march = await statement(client, owner, account, "2024-03")
        assert march.json()["is_partial"] is True
        april = await statement(client, owner, account, "2024-04")
        assert april.json()["code"] == "month_in_future"


class TestCsv:
    async def test_the_csv_parses_back_to_the_same_lines_as_the_json(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        body = await statement_json(client, history.owner, history.account, "2024-01")
        by_query = await statement(client, history.owner, history.account, "2024-01", format="csv")
        by_accept = await client.get(
            f"/v1/accounts/{history.account['id']}/statements/2024-01",
            headers={**history.owner.headers, "Accept": "text/csv"},
        )
        for response in (by_query, by_accept):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/csv")
            assert "attachment" in response.headers["content-disposition"]
            rows = list(csv.DictReader(io.StringIO(response.text)))
            assert list(rows[0]) == list(render.CSV_COLUMNS)
            assert len(rows) == body["count"] > 24
            for row, line in zip(rows, body["lines"], strict=True):
                assert row == {
                    "date": line["date"],
                    "created_at": line["created_at"],
                    "description": line["description"],
                    "counterparty": line["counterparty"],
                    "kind": line["kind"],
                    "amount": render.decimal_minor(line["amount"], 2),
                    "currency": "USD",
                    "balance_after": render.decimal_minor(line["balance_after"], 2),
                    "entry_id": line["entry_id"],
                }
        assert any('"' in line["description"] for line in body["lines"])

    async def test_an_empty_month_is_a_header_row_only(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        response = await statement(
            client, history.owner, history.account, QUIET_MONTH, format="csv"
        )
        assert response.text == ",".join(render.CSV_COLUMNS) + "\r\n"

    def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(self) -> None:
        assert render._safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
        assert render._safe_cell("Rent") == "Rent"


def pdf_text(data: bytes) -> tuple[int, list[str]]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), [page.extract_text() for page in reader.pages]


class TestPdf:
    @pytest.mark.parametrize("settings_overrides", [NEW_YORK], indirect=True)
    async def test_the_pdf_has_a_header_totals_and_numbered_pages(
        self, client: httpx.AsyncClient, app: FastAPI, tmp_path: Path
    ) -> None:
        history = await generate_history(client, app)
        body = await statement_json(client, history.owner, history.account, "2024-01")
        response = await statement(client, history.owner, history.account, "2024-01", format="pdf")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
        pages, texts = pdf_text(response.content)
        assert pages == render.page_count(body["count"]) >= 2
        first = texts[0]
        assert "Harbour Bank" in first
        assert "Monthly statement" in first
        # The holder's own statement shows the full account number.
        number = history.account["number"]
        assert f"Account {number[:4]} {number[4:8]} {number[8:]}" in first
        assert "Ada Lovelace" in first
        assert "Period 1 January 2024 – 31 January 2024" in first
        assert "Times in America/New_York" in first
        for total in ("opening_balance", "total_credits", "total_debits", "closing_balance"):
            assert render.format_minor(body[total], 2) in first, total
        assert f"Page 1 of {pages}" in first
        assert f"Page {pages} of {pages}" in texts[-1]
        assert "Statement to date" not in "".join(texts)
        last_line = body["lines"][-1]
        assert render.format_minor(last_line["balance_after"], 2) in texts[-1]
        _assert_not_blank(response.content, tmp_path)

    async def test_the_current_months_pdf_says_statement_to_date(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        response = await client.get(
            f"/v1/accounts/{history.account['id']}/statements/2024-03",
            headers={**history.owner.headers, "Accept": "application/pdf"},
        )
        pages, texts = pdf_text(response.content)
        assert "Statement to date" in texts[0]
        assert "as of 2024-03-20 15:30 (UTC)" in texts[0]
        # The period ends today, not on the 31st.
        assert "Period 1 March 2024 – 20 March 2024 (to date)" in texts[0]
        assert "31 March" not in texts[0]
        assert f"Page 1 of {pages}" in texts[0]

    async def test_an_empty_month_is_one_page(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        history = await generate_history(client, app)
        response = await statement(
            client, history.owner, history.account, QUIET_MONTH, format="pdf"
        )
        pages, texts = pdf_text(response.content)
        assert pages == 1
        assert "No transactions in this period." in texts[0]
        assert "Page 1 of 1" in texts[0]

    def test_page_count_follows_the_layout(self) -> None:
        assert render.page_count(0) == 1
        assert render.page_count(render.LINES_FIRST_PAGE) == 1
        assert render.page_count(render.LINES_FIRST_PAGE + 1) == 2
        assert render.page_count(render.LINES_FIRST_PAGE + render.LINES_PER_PAGE) == 2
        assert render.page_count(render.LINES_FIRST_PAGE + render.LINES_PER_PAGE + 1) == 3


def _assert_not_blank(data: bytes, tmp_path: Path) -> None:
    """Render page 1 to PNG with poppler's pdftoppm and look for ink.

    Without pdftoppm the check is left out on a workstation, and fails under CI=true
    (.ci/install-browser installs poppler-utils), so CI never passes without it."""
    if shutil.which("pdftoppm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pdftoppm is missing: install poppler-utils (.ci/install-browser)")
        return
    from PIL import Image

    source = tmp_path / "statement.pdf"
    source.write_bytes(data)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(source), str(tmp_path / "p")],
        check=True,
        timeout=60,
    )
    (png,) = tmp_path.glob("p*.png")
    image = Image.open(png).convert("L")
    dark = sum(image.histogram()[:200])
    assert dark > image.width * image.height * 0.01


class TestFormatting:
    @pytest.mark.parametrize(
        ("amount", "exponent", "text"),
        [
            (0, 2, "0.00"),
            (5, 2, "0.05"),
            (-123456789, 2, "-1,234,567.89"),
            (1500, 0, "1,500"),
        ],
    )
    def test_minor_units_are_written_with_digits_only(
        self, amount: int, exponent: int, text: str
    ) -> None:
        assert render.format_minor(amount, exponent) == text


class TestPendingHolds:
    async def test_open_card_holds_are_listed_beside_the_statement_not_in_its_totals(
        self, client: httpx.AsyncClient
    ) -> None:
        from tests.cards_support import NETWORK, approved, authorize, funded_card

        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=100_00)
        hold_id = await approved(client, card, 12_34)
        month = f"{dt.datetime.now(dt.UTC):%Y-%m}"
        response = await client.get(
            f"/v1/accounts/{account['id']}/statements/{month}", headers=member.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [hold["id"] for hold in body["pending_holds"]] == [hold_id]
        assert body["pending_holds"][0]["amount"] == 12_34
        assert "Corner Bookshop" in body["pending_holds"][0]["description"]
        # The hold reduces the available balance only: the statement's balances ignore it.
        assert body["closing_balance"] == 100_00
        assert body["total_debits"] == 0
        assert all("Corner Bookshop" not in line["description"] for line in body["lines"])
        # The PDF prints the hold in its own table; the CSV has only the lines.
        pdf = await client.get(
            f"/v1/accounts/{account['id']}/statements/{month}?format=pdf", headers=member.headers
        )
        _, texts = pdf_text(pdf.content)
        printed = "".join(texts)
        assert "Pending card holds" in printed
        assert "Card hold: Corner Bookshop" in printed
        csv_answer = await client.get(
            f"/v1/accounts/{account['id']}/statements/{month}?format=csv", headers=member.headers
        )
        assert csv_answer.status_code == 200
        assert "Corner Bookshop" not in csv_answer.text

        # Oldest first; a captured hold leaves the list and becomes a line of the month.
        later = await authorize(client, card, 5_00, merchant_name="Night Market")
        assert later.json()["status"] == "approved", later.text
        both = await client.get(
            f"/v1/accounts/{account['id']}/statements/{month}", headers=member.headers
        )
        assert [hold["id"] for hold in both.json()["pending_holds"]] == [
            hold_id,
            later.json()["id"],
        ]
        capture = await client.post(
            f"/v1/card-authorizations/{hold_id}/capture",
            json={"amount": 12_34},
            headers={**NETWORK, "Idempotency-Key": f"capture-{hold_id}"},
        )
        assert capture.status_code == 200, capture.text
        body = (
            await client.get(
                f"/v1/accounts/{account['id']}/statements/{month}", headers=member.headers
            )
        ).json()
        assert [hold["id"] for hold in body["pending_holds"]] == [later.json()["id"]]
        assert body["total_debits"] == 12_34
        assert body["closing_balance"] == 100_00 - 12_34


class TestUnicodeStatement:
    @pytest.mark.parametrize("settings_overrides", [NEW_YORK], indirect=True)
    async def test_names_and_addresses_in_any_script_print_as_written(
        self, client: httpx.AsyncClient, app: FastAPI, tmp_path: Path
    ) -> None:
        owner = await make_member(client, first_name="Łukasz", last_name="Żółć-Wiśniewski")
        address = {"line1": "ul. Świętokrzyska 12", "city": "Warszawa",
                   "postal_code": "00-916", "country": "PL"}  # fmt: skip
        patched = await client.patch(
            "/v1/account-holders/me", json={"address": address}, headers=owner.headers
        )
        assert patched.status_code == 200, patched.text
        account = await open_account(client, owner, balance_minor=500_00)
        friend = await make_member(client, first_name="Αλέξανδρος", last_name="Παπαδόπουλος")
        target = await open_account(client, friend)
        sent = await client.post(
            "/v1/transfers",
            json={"source_account_id": account["id"], "target_account_number": target["number"],
                  "amount": 12_34, "description": "Обед в кафе «Ёлка»"},
            headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())},
        )  # fmt: skip
        assert sent.status_code == 201, sent.text
        month = dt.datetime.now(ZoneInfo("America/New_York")).strftime("%Y-%m")
        response = await statement(client, owner, account, month, format="pdf")
        assert response.status_code == 200, response.text
        _, texts = pdf_text(response.content)
        text = texts[0]
        number = account["number"]
        for expected in (
            "Łukasz Żółć-Wiśniewski",
            "ul. Świętokrzyska 12",
            "00-916 Warszawa",
            "Harbour Bank",
            "1 Harbour Street",
            "support@example.com",
            "Обед в кафе «Ёлка»",
            f"{number[:4]} {number[4:8]} {number[8:]}",
            "(to date)",
            "-12.34",
            "487.66",
        ):
            assert expected in text, expected
        # The same text through poppler, as a reader's PDF viewer would extract it.
        if shutil.which("pdftotext"):
            source = tmp_path / "statement.pdf"
            source.write_bytes(response.content)
            extracted = subprocess.run(
                ["pdftotext", "-layout", str(source), "-"],
                check=True, capture_output=True, text=True, timeout=60,
            ).stdout  # fmt: skip
            assert "Łukasz Żółć-Wiśniewski" in extracted
            assert "Обед в кафе «Ёлка»" in extracted
        elif os.environ.get("CI") == "true":
            pytest.fail("pdftotext is missing: install poppler-utils (.ci/install-browser)")

    def test_csv_amounts_follow_the_currency_exponent(self) -> None:
        assert render.decimal_minor(-1250, 2) == "-12.50"
        assert render.decimal_minor(5, 2) == "0.05"
        assert render.decimal_minor(1250, 0) == "1250"
        assert render.decimal_minor(1001, 3) == "1.001"
        assert render.decimal_minor(123456789, 2) == "1234567.89"
