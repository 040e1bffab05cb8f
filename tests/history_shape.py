"""The history route answers rows built as plain dicts (ledger/history.py `HistoryItem`),
serialized without a model: this holds such an answer to the published schema."""

from __future__ import annotations

import httpx

from banking.payments.schemas import TransactionPage


def assert_history_shape(response: httpx.Response) -> None:
    """The answer is exactly what `TransactionPage` makes of itself: every field present,
    of its type, in order, none extra, and times and ids written as the models write them."""
    assert response.status_code == 200, response.text
    page = TransactionPage.model_validate_json(response.content, strict=False)
    assert page.model_dump_json().encode() == response.content
