"""A statement as CSV or PDF (JSON comes from `schemas.statement_out`).

Pure functions of a `Statement`: no database, no HTTP, so the API, the CLI and the
benchmark render the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from banking.statements.service import Statement, StatementLine

CSV_COLUMNS = (
    "date",
    "created_at",
    "description",
    "counterparty",
    "kind",
    "amount",
    "currency",
    "balance_after",
    "entry_id",
)
# A spreadsheet would run a cell starting with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def format_minor(amount_minor: int, exponent: int) -> str:
    """1234567 with exponent 2 -> "12,345.67" (digits only: no float anywhere)."""
    sign = "-" if amount_minor < 0 else ""
    units, fraction = divmod(abs(amount_minor), 10**exponent)
    text = f"{units:,}"
    if exponent:
        text += f".{fraction:0{exponent}d}"
    return sign + text


def decimal_minor(amount_minor: int, exponent: int) -> str:
    """1234567 with exponent 2 -> "12345.67", -5 -> "-0.05": a plain decimal for
    spreadsheets (no grouping), exact (no float)."""
    sign = "-" if amount_minor < 0 else ""
    units, fraction = divmod(abs(amount_minor), 10**exponent)
    return f"{sign}{units}.{fraction:0{exponent}d}" if exponent else f"{sign}{units}"


def filename(statement: Statement, extension: str) -> str:
    last4 = statement.account.number[-4:] or "account"
    return f"statement-{last4}-{statement.period.month}.{extension}"


def _safe_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def to_csv(statement: Statement) -> str:
    """One header row, then one row per line; amounts and running balance as decimals in
    the currency's minor-unit exponent ("-12.50" USD, "1250" JPY), with the currency."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in statement.lines:
        writer.writerow(
            (
                line.date.isoformat(),
                line.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                _safe_cell(line.description),
                _safe_cell(line.counterparty),
                line.kind,
                decimal_minor(line.amount_minor, statement.exponent),
                statement.currency,
                decimal_minor(line.balance_after_minor, statement.exponent),
                str(line.entry_id),
            )
        )
    return buffer.getvalue()


# PDF layout, in millimetres on A4 portrait.
PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
MARGIN = 15.0
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
ROW_HEIGHT = 5.6
TABLE_BOTTOM = PAGE_HEIGHT - 18.0
LINES_FIRST_PAGE = 23
LINES_PER_PAGE = 40
COLUMNS = (  # title, width, alignment
    ("Date", 20.0, Align.L),
    ("Description", 66.0, Align.L),
    ("Counterparty", 30.0, Align.L),
    ("Amount", 32.0, Align.R),
    ("Balance", 32.0, Align.R),
)
INK = (33, 37, 41)
MUTED = (108, 117, 125)
ACCENT = (13, 71, 161)
RULE = (206, 212, 218)
STRIPE = (244, 246, 249)
CREDIT = (25, 118, 60)
DEBIT = (176, 42, 55)


def page_count(line_count: int) -> int:
    """Pages of a statement with this many lines and no pending holds."""
    rest = max(0, line_count - LINES_FIRST_PAGE)
    return 1 + math.ceil(rest / LINES_PER_PAGE)


# DejaVu Sans ships with the package (fonts/, licence beside it): it covers Latin,
# Greek, Cyrillic and more, so "Łukasz Żółć-Wiśniewski" prints as written.
FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"
# Space below the page header on page 1 for the holder's and the bank's addresses.
ADDRESS_BLOCK = 26.0


def _long_date(day: dt.date) -> str:
    return f"{day.day} {day.strftime('%B')} {day.year}"


def _grouped_number(number: str) -> str:
    """ "123456789012" -> "1234 5678 9012"."""
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def period_text(statement: Statement) -> str:
    """The period's real dates: a statement to date ends today, not on the 31st."""
    period = statement.period
    first = period.month.first_day()
    if statement.is_partial:
        today = statement.generated_at.astimezone(period.zone).date()
        return f"{_long_date(first)} – {_long_date(today)} (to date)"
    return f"{_long_date(first)} – {_long_date(period.month.last_day())}"


class _StatementPdf(FPDF):
    def __init__(
        self, statement: Statement, bank_name: str, bank_address: str, bank_contact: str
    ) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.statement = statement
        self.bank_name = bank_name
        self.bank_address = bank_address
        self.bank_contact = bank_contact
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(False)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.alias_nb_pages()
        self.set_title(f"{statement.title} {statement.period.month}")
        self.set_author(bank_name)
        self.set_creator(bank_name)
        self.set_creation_date(statement.generated_at)

    def _text(self, width: float, height: float, text: str, align: Align = Align.L) -> None:
        self.cell(
            width,
            height,
            text,
            align=align,
            new_x=XPos.RIGHT,
            new_y=YPos.TOP,
        )

    def header(self) -> None:
        statement = self.statement
        account = statement.account
        period = statement.period
        self.set_xy(MARGIN, 12)
        self.set_text_color(*ACCENT)
        self.set_font(FONT, "B", 15)
        self._text(CONTENT_WIDTH / 2, 8, self.bank_name)
        self.set_text_color(*INK)
        self.set_font(FONT, "B", 13)
        self._text(CONTENT_WIDTH / 2, 8, statement.title, Align.R)
        self.set_xy(MARGIN, 21)
        self.set_font(FONT, "", 9)
        self.set_text_color(*INK)
        # The holder's own statement: the full account number.
        self._text(
            CONTENT_WIDTH * 0.45,
            5,
            f"Account {_grouped_number(account.number)}  |  {account.type.capitalize()}"
            f"  |  {account.currency}",
        )
        self._text(CONTENT_WIDTH * 0.55, 5, f"Period {period_text(statement)}", Align.R)
        self.set_xy(MARGIN, 26)
        self.set_text_color(*MUTED)
        self.set_font(FONT, "", 8)
        self._text(CONTENT_WIDTH / 2, 4, f"Times in {period.timezone}")
        if statement.is_partial:
            as_of = statement.generated_at.astimezone(period.zone)
            self._text(
                CONTENT_WIDTH / 2,
                4,
                f"Statement to date: as of {as_of:%Y-%m-%d %H:%M} ({period.timezone})",
                Align.R,
            )
        self.set_draw_color(*ACCENT)
        self.set_line_width(0.6)
        self.line(MARGIN, 32, PAGE_WIDTH - MARGIN, 32)
        self.set_line_width(0.2)

    def addresses(self, top: float) -> float:
        """Page 1: the holder's name and address (left), the bank's (right)."""
        account = self.statement.account
        half = CONTENT_WIDTH / 2
        self.set_xy(MARGIN, top)
        self.set_font(FONT, "B", 10)
        self.set_text_color(*INK)
        self._text(half, 5, account.holder_name or "")
        self.set_font(FONT, "B", 9)
        self._text(half, 5, self.bank_name, Align.R)
        self.set_font(FONT, "", 9)
        left = list(account.holder_address)
        right = [part.strip() for part in self.bank_address.split(",") if part.strip()]
        if self.bank_contact:
            right.append(self.bank_contact)
        for index in range(max(len(left), len(right))):
            self.set_xy(MARGIN, top + 5 + 4.5 * index)
            self.set_text_color(*INK)
            self._text(half, 4.5, left[index] if index < len(left) else "")
            self.set_text_color(*MUTED)
            self._text(half, 4.5, right[index] if index < len(right) else "", Align.R)
        return top + ADDRESS_BLOCK

    def footer(self) -> None:
        self.set_xy(MARGIN, PAGE_HEIGHT - 12)
        self.set_font(FONT, "", 8)
        self.set_text_color(*MUTED)
        generated = self.statement.generated_at.astimezone(dt.UTC)
        self._text(CONTENT_WIDTH / 2, 5, f"Generated {generated:%Y-%m-%d %H:%M} UTC")
        self._text(CONTENT_WIDTH / 2, 5, f"Page {self.page_no()} of {{nb}}", Align.R)

    def summary(self, top: float) -> float:
        statement = self.statement
        exponent = statement.exponent
        boxes = (
            ("Opening balance", format_minor(statement.opening_balance_minor, exponent), INK),
            ("Total credits", format_minor(statement.total_credits_minor, exponent), CREDIT),
            ("Total debits", format_minor(statement.total_debits_minor, exponent), DEBIT),
            ("Closing balance", format_minor(statement.closing_balance_minor, exponent), INK),
            ("Lines", str(statement.count), INK),
        )
        height = 17.0
        self.set_fill_color(*STRIPE)
        self.set_draw_color(*RULE)
        self.rect(MARGIN, top, CONTENT_WIDTH, height, style="DF", round_corners=True)
        width = CONTENT_WIDTH / len(boxes)
        for index, (label, value, colour) in enumerate(boxes):
            left = MARGIN + index * width
            if index:
                self.line(left, top + 3, left, top + height - 3)
            self.set_xy(left, top + 2.5)
            self.set_font(FONT, "", 8)
            self.set_text_color(*MUTED)
            self._text(width, 4, label, Align.C)
            self.set_xy(left, top + 8)
            self.set_font(FONT, "B", 11)
            self.set_text_color(*colour)
            self._text(width, 6, value, Align.C)
        self.set_xy(MARGIN, top + height + 1)
        self.set_font(FONT, "", 7)
        self.set_text_color(*MUTED)
        self._text(CONTENT_WIDTH, 4, f"Amounts in {statement.currency}.", Align.R)
        return top + height + 6

    def chart(self, top: float) -> float:
        """The balance at the end of each day, as a line over a light area."""
        days = self.statement.daily_balances()
        exponent = self.statement.exponent
        self.set_xy(MARGIN, top)
        self.set_font(FONT, "B", 9)
        self.set_text_color(*INK)
        self._text(CONTENT_WIDTH, 5, "Daily balance")
        label_width = 24.0
        left, right = MARGIN + label_width, PAGE_WIDTH - MARGIN
        plot_top, plot_bottom = top + 7, top + 37
        values = [balance for _, balance in days] or [self.statement.opening_balance_minor]
        low, high = min(0, *values), max(values)
        if high == low:
            high = low + 1
        total_days = self.statement.period.month.last_day().day

        def x_of(index: int) -> float:
            return left + (right - left) * (index / max(1, total_days - 1))

        def y_of(value: int) -> float:
            return plot_bottom - (plot_bottom - plot_top) * (value - low) / (high - low)

        self.set_draw_color(*RULE)
        self.set_font(FONT, "", 7)
        self.set_text_color(*MUTED)
        for value in (low, (low + high) // 2, high):
            y = y_of(value)
            self.line(left, y, right, y)
            self.set_xy(MARGIN, y - 2)
            self._text(label_width - 2, 4, format_minor(value, exponent), Align.R)
        for index in sorted({0, 9, 19, total_days - 1}):
            self.set_xy(x_of(index) - 6, plot_bottom + 1)
            self._text(12, 4, str(index + 1), Align.C)
        if days:
            points = [(x_of(index), y_of(balance)) for index, (_, balance) in enumerate(days)]
            area = [(points[0][0], y_of(low)), *points, (points[-1][0], y_of(low))]
            self.set_fill_color(217, 231, 250)
            self.polygon(area, style="F")
            self.set_draw_color(*ACCENT)
            self.set_line_width(0.5)
            if len(points) == 1:
                self.line(points[0][0], points[0][1], points[0][0] + 0.5, points[0][1])
            else:
                self.polyline(points)
            self.set_line_width(0.2)
        return plot_bottom + 8

    def table_header(self, top: float, title: str = "Transactions") -> float:
        self.set_xy(MARGIN, top)
        self.set_font(FONT, "B", 9)
        self.set_text_color(*INK)
        self._text(CONTENT_WIDTH, 5, title)
        self.set_xy(MARGIN, top + 6)
        self.set_fill_color(*ACCENT)
        self.set_text_color(255, 255, 255)
        self.set_font(FONT, "B", 8)
        for name, width, align in COLUMNS:
            self.cell(
                width,
                ROW_HEIGHT + 0.4,
                f" {name} " if align is Align.L else f"{name} ",
                align=align,
                fill=True,
                new_x=XPos.RIGHT,
                new_y=YPos.TOP,
            )
        return top + 6 + ROW_HEIGHT + 0.4

    def row(self, top: float, cells: Sequence[str], shade: bool, amount_minor: int) -> None:
        self.set_xy(MARGIN, top)
        if shade:
            self.set_fill_color(*STRIPE)
            self.rect(MARGIN, top, CONTENT_WIDTH, ROW_HEIGHT, style="F")
        self.set_font(FONT, "", 8)
        for index, ((_, width, align), text) in enumerate(zip(COLUMNS, cells, strict=True)):
            colour = INK
            if index == 3:
                colour = CREDIT if amount_minor > 0 else DEBIT
            self.set_text_color(*colour)
            fitted = self._fit(text, width - 2)
            padded = f" {fitted}" if align is Align.L else f"{fitted} "
            self.cell(width, ROW_HEIGHT, padded, align=align, new_x=XPos.RIGHT, new_y=YPos.TOP)

    def _fit(self, text: str, width: float) -> str:
        if self.get_string_width(text) <= width:
            return text
        while text and self.get_string_width(text + "...") > width:
            text = text[:-1]
        return text.rstrip() + "..."


def _line_cells(line: StatementLine, exponent: int) -> tuple[str, ...]:
    return (
        line.date.isoformat(),
        line.description,
        line.counterparty,
        format_minor(line.amount_minor, exponent),
        format_minor(line.balance_after_minor, exponent),
    )


def to_pdf(
    statement: Statement, *, bank_name: str, bank_address: str = "", bank_contact: str = ""
) -> bytes:
    """About 40 lines a page; page 1 also carries the addresses, the summary box and the
    balance chart."""
    pdf = _StatementPdf(statement, bank_name, bank_address, bank_contact)
    exponent = statement.exponent
    pdf.add_page()
    top = pdf.addresses(36)
    top = pdf.summary(top)
    top = pdf.chart(top)
    top = pdf.table_header(top)
    capacity = LINES_FIRST_PAGE
    if not statement.lines:
        pdf.set_xy(MARGIN, top + 1)
        pdf.set_font(FONT, "", 9)
        pdf.set_text_color(*MUTED)
        pdf._text(CONTENT_WIDTH, ROW_HEIGHT, "No transactions in this period.")
        top += ROW_HEIGHT + 2
    on_page = 0
    for index, line in enumerate(statement.lines):
        if on_page == capacity:
            pdf.add_page()
            top = pdf.table_header(38, "Transactions (continued)")
            capacity, on_page = LINES_PER_PAGE, 0
        pdf.row(top, _line_cells(line, exponent), index % 2 == 1, line.amount_minor)
        top += ROW_HEIGHT
        on_page += 1
    if statement.lines:
        pdf.set_draw_color(*RULE)
        pdf.line(MARGIN, top, PAGE_WIDTH - MARGIN, top)
    if statement.pending_holds:
        if on_page + len(statement.pending_holds) + 3 > capacity:
            pdf.add_page()
            top, on_page, capacity = 38.0, 0, LINES_PER_PAGE
        top = pdf.table_header(top + 4, "Pending card holds (not included in the balances)")
        for index, hold in enumerate(statement.pending_holds):
            if top + ROW_HEIGHT > TABLE_BOTTOM:
                pdf.add_page()
                top = pdf.table_header(38, "Pending card holds (continued)")
            day = hold.created_at.astimezone(statement.period.zone).date()
            amount = format_minor(-hold.amount_minor, exponent)
            cells = (day.isoformat(), hold.description, "Card network", amount, "")
            pdf.row(top, cells, index % 2 == 1, -hold.amount_minor)
            top += ROW_HEIGHT
    return bytes(pdf.output())
