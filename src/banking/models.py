"""Import every domain's ORM models so metadata (Alembic, tests) sees all tables."""

from __future__ import annotations

import importlib

DOMAINS_WITH_MODELS = (
    "identity",
    "holders",
    "audit",
    "accounts",
    "ledger",
    "cards",
    "payees",
    "schedules",
    "interest",
    "approvals",
    "events",
)


def load_all_models() -> None:
    for domain in DOMAINS_WITH_MODELS:
        importlib.import_module(f"banking.{domain}.models")
