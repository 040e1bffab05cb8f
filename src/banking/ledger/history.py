"""Reading the ledger: an account's history, balance checks, and the bank-wide entry list."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict, cast

from sqlalchemy import (
    BigInteger,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from banking.accounts import numbers
from banking.accounts.models import Account
from banking.approvals.models import Approval, ApprovalKind
from banking.core import reads
from banking.core.db import JsonTime, JsonUuid, UTCDateTime
from banking.core.pagination import CURSOR_ERRORS, cursor_int, cursor_time, cursor_uuid
from banking.holders.models import AccountHolder
from banking.ledger import cursor as cursors
from banking.ledger import lapsed
from banking.ledger.models import CardAuthorization, EntryStatus, JournalEntry, Posting

ENTRY = cast(Table, JournalEntry.__table__)


class Direction(StrEnum):
    credit = "credit"
    debit = "debit"


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    status: EntryStatus = EntryStatus.posted
    kind: str | None = None
    direction: Direction | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    limit: int = 50
    cursor: str | None = None
    # On the absolute amount, in minor units (both inclusive).
    min_amount: int | None = None
    max_amount: int | None = None
    # Case-insensitive text in the description, the counterparty's name as this account's
    # holder sees it (see `counterparty_name`), the merchant, or the last four digits of
    # the counterparty's number.
    q: str | None = None
    # The counterparty's full account number.
    counterparty: str | None = None


class HistoryItem(TypedDict):
    """One movement as the history route answers it (payments/schemas.py
    `TransactionOut`, field for field): a plain dict, serialized as is, because building
    and validating a model per row cost more CPU than the page's SQL (tests/history_shape.py
    holds the two to the same JSON). Ids and times may come as the text the answer
    writes (core/db.py `JsonUuid`, `JsonTime`)."""

    id: uuid.UUID | str
    posting_id: int | None
    kind: str
    status: str
    amount: int
    currency: str
    balance_after: int | None
    description: str | None
    counterparty_account_number: str | None
    decline_reason: str | None
    created_at: dt.datetime | str
    reversed_entry_id: uuid.UUID | str | None
    counterparty_name: str | None


def _time_position(created_at: dt.datetime, entry_id: uuid.UUID, kind: str) -> str:
    return cursors.encode({"k": kind, "t": created_at.isoformat(), "i": str(entry_id)})


def _decode_time_position(cursor: str, kind: str) -> tuple[dt.datetime, uuid.UUID]:
    position = cursors.decode(cursor, kind=kind)
    try:
        return cursor_time(position["t"]), cursor_uuid(position["i"])
    except CURSOR_ERRORS as exc:
        raise cursors.InvalidCursor() from exc


POSTING = cast(Table, Posting.__table__)
ACCOUNT = cast(Table, Account.__table__)
AUTHORIZATION = cast(Table, CardAuthorization.__table__)
APPROVAL = cast(Table, Approval.__table__)
_COUNTERPARTY = ACCOUNT.alias("counterparty")
_HOLDER = cast(Table, AccountHolder.__table__).alias("counterparty_holder")
# The card payment an entry captured, or the one a refund or reversal gives back (part
# of): its merchant is the entry's counterparty. On the index (capture_entry_id).
_CAPTURE = AUTHORIZATION.alias("capture")
_GIVEN_BACK = AUTHORIZATION.alias("given_back")
_PATTERN: Any = bindparam("q_pattern")


def like_pattern(text: str) -> str:
    """`text` as a case-insensitive LIKE pattern matching it anywhere (`\\` escapes)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any) -> Any:
    return func.lower(column).like(_PATTERN, escape="\\")


def _full_name(holder: Any) -> Any:
    return holder.c.first_name.concat(literal_column("' '")).concat(holder.c.last_name)


def _counterparty_columns() -> tuple[Any, ...]:
    return (
        _HOLDER.c.first_name.label("cp_first_name"),
        _HOLDER.c.last_name.label("cp_last_name"),
        _COUNTERPARTY.c.owner_id.label("cp_owner_id"),
    )


def counterparty_name(row: Any, *, amount: int, viewer_id: uuid.UUID | None) -> str | None:
    """`name_shown` of a row with the columns `merchant` (optional), `cp_first_name`,
    `cp_last_name` and `cp_owner_id`."""
    return name_shown(
        getattr(row, "merchant", None),
        row.cp_first_name,
        row.cp_last_name,
        amount=amount,
        own=viewer_id is not None and row.cp_owner_id == viewer_id,
    )


def name_shown(
    merchant: str | None,
    first_name: str | None,
    last_name: str | None,
    *,
    amount: int,
    own: bool | None,
) -> str | None:
    """Who is on the other side, as this account's holder may see it: the merchant of a
    card payment (or of the card payment a refund gives back); for a movement between
    customer accounts, the other holder's full name when the money came in (a bank shows
    the sender's name to the recipient) or when both accounts are the viewer's, else the
    masked name the payee lookup shows (a sender knows whom they paid; a number alone
    must not reveal a full name); None for the bank's own accounts (cash, interest)."""
    if merchant:
        return str(merchant)
    if first_name is None and last_name is None:
        return None
    if amount > 0 or own:
        return f"{first_name} {last_name}".strip()
    return numbers.mask_name(first_name, last_name)


def _search(amount: Any) -> Any:
    """The search text (`q`) on one history row: its description, the merchant, the
    counterparty's name where the row shows it in full (see `counterparty_name`: a
    search must not confirm a name the list masks), or the last four digits of the
    counterparty's number (all the list shows of it). Evaluated on the rows the keyset
    walk reads, newest first, so a page stops as soon as it is full."""
    shown_in_full = or_(amount > 0, _COUNTERPARTY.c.owner_id == bindparam("viewer_id"))
    return or_(
        _contains(ENTRY.c.description),
        and_(shown_in_full, _contains(_full_name(_HOLDER))),
        _contains(func.substr(_COUNTERPARTY.c.number, 9, 4)),
    )


def _with_counterparty_entries() -> Any:
    """The account's entries with the counterparty account numbered `counterparty`."""
    account_id: Any = bindparam("account_id")
    other = (
        select(ACCOUNT.c.id).where(ACCOUNT.c.number == bindparam("counterparty")).scalar_subquery()
    )
    return select(ENTRY.c.id).where(
        or_(
            and_(ENTRY.c.source_account_id == account_id, ENTRY.c.target_account_id == other),
            and_(ENTRY.c.target_account_id == account_id, ENTRY.c.source_account_id == other),
        )
    )


@functools.cache
def _posted_history(
    *,
    cursor: bool,
    kind: bool,
    direction: Direction | None,
    created_from: bool,
    created_to: bool,
    min_amount: bool = False,
    max_amount: bool = False,
    q: bool = False,
    counterparty: bool = False,
    window: bool = False,
) -> Any:
    """The history statement for one combination of filters, built once (values are bound
    parameters): building a statement costs more CPU than the database spends on it."""
    other_side = case(
        (ENTRY.c.source_account_id == POSTING.c.account_id, ENTRY.c.target_account_id),
        else_=ENTRY.c.source_account_id,
    )
    # Read as the answer writes them (core/db.py JsonUuid, JsonTime), in the order
    # `account_history_sync` unpacks them.
    query = (
        select(
            POSTING.c.id,
            POSTING.c.amount_minor,
            POSTING.c.currency,
            POSTING.c.balance_after_minor,
            type_coerce(POSTING.c.created_at, JsonTime()).label("created_at"),
            type_coerce(ENTRY.c.id, JsonUuid()).label("entry_id"),
            ENTRY.c.kind,
            ENTRY.c.status,
            ENTRY.c.description,
            _COUNTERPARTY.c.number,
            type_coerce(ENTRY.c.reversed_entry_id, JsonUuid()).label("reversed_entry_id"),
            _HOLDER.c.first_name.label("cp_first_name"),
            _HOLDER.c.last_name.label("cp_last_name"),
            # Compared here: no UUID is built per row to tell the viewer's own accounts.
            (_COUNTERPARTY.c.owner_id == bindparam("viewer_id")).label("cp_own"),
            func.coalesce(_CAPTURE.c.merchant_name, _GIVEN_BACK.c.merchant_name).label("merchant"),
        )
        .select_from(
            POSTING.join(ENTRY, ENTRY.c.id == POSTING.c.entry_id)
            .outerjoin(_COUNTERPARTY, _COUNTERPARTY.c.id == other_side)
            .outerjoin(_HOLDER, _HOLDER.c.user_id == _COUNTERPARTY.c.owner_id)
            .outerjoin(_CAPTURE, _CAPTURE.c.capture_entry_id == ENTRY.c.id)
            .outerjoin(_GIVEN_BACK, _GIVEN_BACK.c.capture_entry_id == ENTRY.c.reversed_entry_id)
        )
        .where(POSTING.c.account_id == bindparam("account_id"))
        .order_by(POSTING.c.id.desc())
        .limit(bindparam("limit"))
    )
    if cursor:
        query = query.where(POSTING.c.id < bindparam("before"))
    if window:
        query = query.where(POSTING.c.id >= bindparam("floor"))
    if kind:
        query = query.where(ENTRY.c.kind == bindparam("kind"))
    if direction is Direction.credit:
        query = query.where(POSTING.c.amount_minor > 0)
    elif direction is Direction.debit:
        query = query.where(POSTING.c.amount_minor < 0)
    if created_from:
        query = query.where(
            POSTING.c.created_at >= bindparam("created_from", type_=POSTING.c.created_at.type)
        )
    if created_to:
        query = query.where(
            POSTING.c.created_at < bindparam("created_to", type_=POSTING.c.created_at.type)
        )
    if min_amount:
        query = query.where(func.abs(POSTING.c.amount_minor) >= bindparam("min_amount"))
    if max_amount:
        query = query.where(func.abs(POSTING.c.amount_minor) <= bindparam("max_amount"))
    if q:
        merchant = func.coalesce(_CAPTURE.c.merchant_name, _GIVEN_BACK.c.merchant_name)
        query = query.where(or_(_search(POSTING.c.amount_minor), _contains(merchant)))
    if counterparty:
        query = query.where(POSTING.c.entry_id.in_(_with_counterparty_entries()))
    return query


def _filter_params(filters: HistoryFilters, viewer_id: uuid.UUID | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if filters.kind:
        params["kind"] = filters.kind
    if filters.created_from:
        params["created_from"] = filters.created_from
    if filters.created_to:
        params["created_to"] = filters.created_to
    if filters.min_amount is not None:
        params["min_amount"] = filters.min_amount
    if filters.max_amount is not None:
        params["max_amount"] = filters.max_amount
    if filters.q:
        params["q_pattern"] = like_pattern(filters.q)
        params["viewer_id"] = viewer_id
    if filters.counterparty:
        params["counterparty"] = filters.counterparty
    return params


# A page with a text search or amount bounds reads at most this many of the account's
# postings (newest first below the cursor). When they hold fewer matches than `limit`,
# the page is short, possibly empty, and `next_cursor` continues below what was read:
# each request costs at most one window, however long the history and however rare the
# match (docs/history.md).
SEARCH_WINDOW = 2_000


_FLOOR = (
    select(POSTING.c.id)
    .where(POSTING.c.account_id == bindparam("account_id"))
    .order_by(POSTING.c.id.desc())
    .limit(1)
    .offset(bindparam("window"))
)
_FLOOR_BELOW = _FLOOR.where(POSTING.c.id < bindparam("before"))


def _floor(connection: Connection, params: dict[str, Any]) -> int | None:
    """The id of the oldest posting of this page's window, when older ones remain."""
    statement = _FLOOR_BELOW if "before" in params else _FLOOR
    values = {"account_id": params["account_id"], "window": SEARCH_WINDOW - 1}
    if "before" in params:
        values["before"] = params["before"]
    row = reads.first(connection, statement, values)
    return None if row is None else int(row.id)


def account_history_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    filters: HistoryFilters,
    viewer_id: uuid.UUID | None = None,
) -> tuple[list[HistoryItem], str | None]:
    """The account's movements, newest first: keyset pagination on the index
    (account_id, id) of postings, so a page deep in a long history costs what the first
    does (`make bench-statements` measures page 1 against page 5,000). The cursor is a
    position only: the filters are sent again with each page, and a cursor used with other
    filters lists what those filters find below that position (never an error).
    `viewer_id` is the holder reading (see `counterparty_name`)."""
    if filters.status is EntryStatus.declined:
        return _declined_history(
            connection, account_id=account_id, filters=filters, viewer_id=viewer_id
        )
    params = _filter_params(filters, viewer_id)
    params["account_id"] = account_id
    params["viewer_id"] = viewer_id
    params["limit"] = filters.limit + 1
    if filters.cursor:
        position = cursors.decode(filters.cursor, kind="posted")
        try:
            params["before"] = cursor_int(position.get("p"))
        except CURSOR_ERRORS as exc:
            raise cursors.InvalidCursor() from exc
    floor = None
    if filters.q or filters.min_amount is not None or filters.max_amount is not None:
        floor = _floor(connection, params)
        if floor is not None:
            params["floor"] = floor
    query = _posted_history(
        cursor=bool(filters.cursor),
        kind=bool(filters.kind),
        direction=filters.direction,
        created_from=bool(filters.created_from),
        created_to=bool(filters.created_to),
        min_amount=filters.min_amount is not None,
        max_amount=filters.max_amount is not None,
        q=bool(filters.q),
        counterparty=bool(filters.counterparty),
        window=floor is not None,
    )
    rows = reads.tuples(connection, query, params)
    mask = numbers.mask
    # Unpacked in the order of `_posted_history`'s columns.
    items: list[HistoryItem] = [
        {
            "id": entry_id,
            "posting_id": posting_id,
            "kind": kind,
            "status": status,
            "amount": amount,
            "currency": currency,
            "balance_after": balance_after,
            "description": description,
            "counterparty_account_number": mask(number),
            "decline_reason": None,
            "created_at": created_at,
            "reversed_entry_id": reversed_entry_id,
            "counterparty_name": name_shown(
                merchant, first_name, last_name, amount=amount, own=own
            ),
        }
        for (
            posting_id,
            amount,
            currency,
            balance_after,
            created_at,
            entry_id,
            kind,
            status,
            description,
            number,
            reversed_entry_id,
            first_name,
            last_name,
            own,
            merchant,
        ) in rows[: filters.limit]
    ]
    next_cursor = None
    if len(rows) > filters.limit:
        next_cursor = cursors.encode({"k": "posted", "p": rows[filters.limit - 1][0]})
    elif floor is not None:
        # The window ended before the page filled: go on below it.
        next_cursor = cursors.encode({"k": "posted", "p": floor})
    return items, next_cursor


def _declined_history(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    filters: HistoryFilters,
    viewer_id: uuid.UUID | None,
) -> tuple[list[HistoryItem], str | None]:
    is_debit = ENTRY.c.source_account_id == account_id
    other_side = case((is_debit, ENTRY.c.target_account_id), else_=ENTRY.c.source_account_id)
    query = (
        select(
            *ENTRY.c,
            _COUNTERPARTY.c.number.label("counterparty_number"),
            *_counterparty_columns(),
        )
        .select_from(
            ENTRY.outerjoin(_COUNTERPARTY, _COUNTERPARTY.c.id == other_side).outerjoin(
                _HOLDER, _HOLDER.c.user_id == _COUNTERPARTY.c.owner_id
            )
        )
        .where(
            ENTRY.c.origin_account_id == account_id,
            ENTRY.c.status == EntryStatus.declined.value,
        )
        .order_by(ENTRY.c.created_at.desc(), ENTRY.c.id.desc())
        .limit(filters.limit + 1)
    )
    query = _entry_filters(query, filters, cursor_kind="declined")
    if filters.direction is Direction.credit:
        query = query.where(ENTRY.c.target_account_id == account_id)
    elif filters.direction is Direction.debit:
        query = query.where(is_debit)
    if filters.min_amount is not None:
        query = query.where(ENTRY.c.amount_minor >= filters.min_amount)
    if filters.max_amount is not None:
        query = query.where(ENTRY.c.amount_minor <= filters.max_amount)
    if filters.counterparty:
        query = query.where(_COUNTERPARTY.c.number == filters.counterparty)
    params: dict[str, Any] = {}
    if filters.q:
        incoming = case((ENTRY.c.target_account_id == account_id, 1), else_=-1)
        query = query.where(_search(incoming))
        params = {"q_pattern": like_pattern(filters.q), "viewer_id": viewer_id}
    rows = connection.execute(query, params).all()
    items = []
    for entry in rows[: filters.limit]:
        number = entry.counterparty_number
        sign = -1 if entry.source_account_id == account_id else 1
        items.append(
            HistoryItem(
                id=entry.id,
                posting_id=None,
                kind=entry.kind,
                status=entry.status,
                amount=sign * entry.amount_minor,
                currency=entry.currency,
                balance_after=None,
                description=entry.description,
                counterparty_account_number=numbers.mask(number),
                decline_reason=entry.decline_reason,
                created_at=entry.created_at,
                reversed_entry_id=entry.reversed_entry_id,
                counterparty_name=counterparty_name(
                    entry, amount=sign * entry.amount_minor, viewer_id=viewer_id
                ),
            )
        )
    next_cursor = None
    if len(rows) > filters.limit:
        last = rows[filters.limit - 1]
        next_cursor = _time_position(last.created_at, last.id, "declined")
    return items, next_cursor


def _entry_filters(query: Any, filters: Any, *, cursor_kind: str) -> Any:
    if filters.cursor:
        created_at, entry_id = _decode_time_position(filters.cursor, cursor_kind)
        query = query.where(
            or_(
                ENTRY.c.created_at < created_at,
                and_(ENTRY.c.created_at == created_at, ENTRY.c.id < entry_id),
            )
        )
    if filters.kind:
        query = query.where(ENTRY.c.kind == filters.kind)
    if filters.created_from:
        query = query.where(ENTRY.c.created_at >= filters.created_from)
    if filters.created_to:
        query = query.where(ENTRY.c.created_at < filters.created_to)
    return query


@dataclass(frozen=True, slots=True)
class EntryFilters:
    status: EntryStatus | None = None
    kind: str | None = None
    account_id: uuid.UUID | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    limit: int = 50
    cursor: str | None = None


def list_entries_sync(
    connection: Connection, *, filters: EntryFilters
) -> tuple[list[Any], str | None]:
    """Journal entries across the bank, newest first (staff views): rows with the
    `JournalEntry` attribute names, and `balance_after_minor`: with an account filter,
    that account's balance after the entry (from its posting; None for a declined entry,
    which posted nothing), else None."""
    balance_after: ColumnElement[Any]
    if filters.account_id is not None:
        balance_after = (
            select(POSTING.c.balance_after_minor)
            .where(POSTING.c.entry_id == ENTRY.c.id, POSTING.c.account_id == filters.account_id)
            .order_by(POSTING.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
    else:
        balance_after = literal(None, BigInteger())
    query = (
        select(*ENTRY.c, balance_after.label("balance_after_minor"))
        .order_by(JournalEntry.created_at.desc(), JournalEntry.id.desc())
        .limit(filters.limit + 1)
    )
    query = _entry_filters(query, filters, cursor_kind="entries")
    if filters.status is not None:
        query = query.where(JournalEntry.status == filters.status.value)
    if filters.account_id is not None:
        query = query.where(
            or_(
                JournalEntry.source_account_id == filters.account_id,
                JournalEntry.target_account_id == filters.account_id,
            )
        )
    rows = list(connection.execute(query).all())
    next_cursor = None
    if len(rows) > filters.limit:
        last = rows[filters.limit - 1]
        next_cursor = _time_position(last.created_at, last.id, "entries")
    return rows[: filters.limit], next_cursor


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    balance_minor: int
    held_minor: int
    sum_minor: int
    last_balance_after_minor: int | None

    @property
    def consistent(self) -> bool:
        last = self.last_balance_after_minor or 0
        return self.balance_minor == self.sum_minor == last


def check_balance_sync(
    connection: Connection, *, account_id: uuid.UUID, now: dt.datetime
) -> BalanceCheck:
    """The cached balance and its recomputations, read in one statement (one snapshot)."""
    last = (
        select(Posting.balance_after_minor)
        .where(Posting.account_id == account_id)
        .order_by(Posting.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    total = (
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .where(Posting.account_id == account_id)
        .scalar_subquery()
    )
    row = connection.execute(
        select(
            Account.balance_minor,
            Account.held_minor - lapsed.lapsed_minor(Account.id, literal(now, UTCDateTime())),
            total,
            last,
        ).where(Account.id == account_id)
    ).one()
    return BalanceCheck(
        balance_minor=row[0],
        held_minor=row[1],
        sum_minor=int(row[2]),
        last_balance_after_minor=row[3],
    )


# Balance at an instant. The balance is `balance_after` of the account's latest posting at
# or before the instant: one descent of the index (account_id, created_at), whose order
# within an account is also the order of posting ids (the ledger's time order: a posting
# is stamped under its account's lock, never earlier than the previous one; checked by
# `banking ledger verify` and tests/integration/test_ledger_time_order.py).
_AT = bindparam("at", type_=UTCDateTime())
# A card hold lasts at most CARD_HOLD_DAYS (at most 60, core/config.py) from its
# creation, so only authorizations made in the 61 days before the instant can hold then.
MAX_HOLD = dt.timedelta(days=61)


def _balance_before(moment: Any, *, inclusive: bool) -> Any:
    bound = POSTING.c.created_at <= moment if inclusive else POSTING.c.created_at < moment
    return (
        select(POSTING.c.balance_after_minor)
        .where(POSTING.c.account_id == bindparam("account_id"), bound)
        .order_by(POSTING.c.created_at.desc(), POSTING.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


_CARD_HELD_AT = (
    select(func.coalesce(func.sum(AUTHORIZATION.c.amount_minor), 0))
    .where(
        AUTHORIZATION.c.account_id == bindparam("account_id"),
        AUTHORIZATION.c.created_at <= _AT,
        AUTHORIZATION.c.created_at >= bindparam("holds_from", type_=UTCDateTime()),
        # Lapsed at its expiry whether or not it was released (ledger/lapsed.py); captured,
        # voided or expired when it was settled.
        AUTHORIZATION.c.expires_at > _AT,
        or_(AUTHORIZATION.c.settled_at.is_(None), AUTHORIZATION.c.settled_at > _AT),
    )
    .scalar_subquery()
)
_APPROVAL_HELD_AT = (
    select(func.coalesce(func.sum(APPROVAL.c.amount_minor), 0))
    .where(
        APPROVAL.c.source_account_id == bindparam("account_id"),
        APPROVAL.c.kind == ApprovalKind.large_transfer.value,
        APPROVAL.c.created_at <= _AT,
        or_(APPROVAL.c.decided_at.is_(None), APPROVAL.c.decided_at > _AT),
    )
    .scalar_subquery()
)
_POINT_IN_TIME = select(
    _balance_before(_AT, inclusive=True).label("balance"),
    _CARD_HELD_AT.label("card_held"),
    _APPROVAL_HELD_AT.label("approval_held"),
)


@dataclass(frozen=True, slots=True)
class PointInTime:
    balance_minor: int
    held_minor: int


def balance_at_sync(
    connection: Connection, *, account_id: uuid.UUID, at: dt.datetime
) -> PointInTime:
    """The account's balance and what was held at the instant `at` (0 and 0 before its
    first posting): one statement, on the indexes (account_id, created_at) of postings
    and card authorizations and (source_account_id, status) of approvals."""
    try:
        holds_from = at - MAX_HOLD
    except OverflowError:  # an instant in the first 61 days of year 1
        holds_from = dt.datetime.min.replace(tzinfo=dt.UTC)
    row = reads.first(
        connection,
        _POINT_IN_TIME,
        {"account_id": account_id, "at": at, "holds_from": holds_from},
    )
    assert row is not None
    return PointInTime(
        balance_minor=int(row.balance or 0),
        held_minor=int(row.card_held or 0) + int(row.approval_held or 0),
    )


MAX_DAYS = 366


@functools.cache
def _closing_balances(days: int) -> Any:
    """One statement with one indexed point lookup per day (`b0`, `b1`, ...), built once
    per number of days."""
    return select(
        *(
            _balance_before(bindparam(f"b{day}", type_=UTCDateTime()), inclusive=False).label(
                f"d{day}"
            )
            for day in range(days)
        )
    )


def closing_balances_sync(
    connection: Connection, *, account_id: uuid.UUID, ends: list[dt.datetime]
) -> list[int]:
    """The account's balance just before each instant of `ends` (at most MAX_DAYS), in
    one round trip: O(len(ends) · log n)."""
    if not ends:
        return []
    if len(ends) > MAX_DAYS:
        raise ValueError("too many days")
    params: dict[str, Any] = {"account_id": account_id}
    params.update({f"b{day}": end for day, end in enumerate(ends)})
    row = reads.first(connection, _closing_balances(len(ends)), params)
    assert row is not None
    return [int(value or 0) for value in row]
