"""Start-up and shutdown of the ledger inside the API process."""

from __future__ import annotations

from fastapi import FastAPI

from banking.core.db import Database
from banking.ledger import internal
from banking.ledger.writer import close_writer, writer_for


async def start(app: FastAPI) -> None:
    db: Database = app.state.db
    await writer_for(db).run(internal.ensure_internal_accounts)


async def stop(app: FastAPI) -> None:
    await close_writer(app.state.db)
