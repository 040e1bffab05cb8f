"""Which database schema a running release accepts: expand/contract for rolling deploys.

During a rolling deploy `banking migrate` runs for the new release while processes of the
previous release go on serving. Each migration module states what it does to them
(docs/migrations.md):

- `schema_change = "expand"`: it only adds (tables, nullable columns or columns with a
  default, indexes); every release that ran on the revision before it runs on it too.
- `schema_change = "contract"`: it removes or changes what the release before it (the
  code whose head is this migration's `down_revision`) no longer uses; that release runs
  on it, older ones do not.
- `schema_change = "breaking"`: no earlier release runs on it; stop the old processes
  before migrating. A module that declares nothing (or something else) counts as this.

The running code cannot know its successors' migration files, so each applied revision is
recorded with its declaration in the `schema_revision` table, in the same transaction as
the migration (`record_step`, called by the Alembic environment; the table exists from
revision 0012 on). `revision_problem` then decides, from the database alone, whether the
code at `head` may serve the schema the database is at: readiness and the start-up check
call it (tests/unit/test_schema_compat.py, tests/integration/test_rolling_deploy.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from banking.core.db import Base, UTCDateTime, utcnow

SCHEMA_CHANGES = ("expand", "contract", "breaking")
UNDECLARED = "breaking"

schema_revision = sa.Table(
    "schema_revision",
    Base.metadata,
    sa.Column("revision", sa.String(64), primary_key=True),
    sa.Column("down_revision", sa.String(64), nullable=True),
    sa.Column("schema_change", sa.String(16), nullable=False),
    sa.Column("applied_at", UTCDateTime(timezone=True), nullable=False),
)


def declared_change(module: ModuleType | Any) -> str:
    """The module's `schema_change`, or "breaking" when it declares none that is valid."""
    value = getattr(module, "schema_change", None)
    return value if value in SCHEMA_CHANGES else UNDECLARED


def record_step(*, ctx: Any, step: Any, **_: Any) -> None:
    """Alembic's `on_version_apply` hook: record (or, on downgrade, forget) the revision
    and its declaration, inside the migration's transaction."""
    connection: Connection = ctx.connection
    if not sa.inspect(connection).has_table(schema_revision.name):
        return  # before revision 0012 created the table (or after its downgrade)
    script = step.up_revision
    if step.is_upgrade:
        downs = script.down_revision
        down = downs if isinstance(downs, str) or downs is None else ",".join(downs)
        connection.execute(
            schema_revision.delete().where(schema_revision.c.revision == script.revision)
        )
        connection.execute(
            schema_revision.insert().values(
                revision=script.revision,
                down_revision=down,
                schema_change=declared_change(script.module),
                applied_at=utcnow(),
            )
        )
    else:
        connection.execute(
            schema_revision.delete().where(schema_revision.c.revision == script.revision)
        )


@dataclass(frozen=True, slots=True)
class Recorded:
    down_revision: str | None
    schema_change: str


def compatibility_problem(
    current: list[str], head: str | None, recorded: Mapping[str, Recorded]
) -> str | None:
    """None when code whose migration head is `head` may serve a database whose
    `alembic_version` holds `current`, else why not (one line)."""
    if head is None or current == [head]:
        return None
    behind = f"the database is at migration {current or 'none'}, the code needs {head}"
    if len(current) != 1:
        return behind
    # Walk back from the database's revision to the code's head.
    steps: list[tuple[str, Recorded]] = []
    revision: str | None = current[0]
    while revision != head:
        step = recorded.get(revision) if revision is not None else None
        if step is None or len(steps) > len(recorded):
            # The database is older than the code, or on a line the code does not know.
            return behind
        steps.append((revision, step))  # type: ignore[arg-type]
        revision = step.down_revision
    for later, step in steps:
        if step.schema_change == "contract" and step.down_revision == head:
            continue
        if step.schema_change == "expand":
            continue
        return (
            f"the database is at migration {current[0]}; migration {later} "
            f"({step.schema_change}) is not compatible with this release (head {head})"
        )
    return None


async def revision_problem(connection: AsyncConnection, head: str | None) -> str | None:
    """`compatibility_problem` for the database behind `connection`. Raises the driver's
    error when the database has no `alembic_version` table."""
    rows = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    current = sorted(row[0] for row in rows)
    if head is None or current == [head]:
        return None
    recorded: dict[str, Recorded] = {}
    if await connection.run_sync(lambda sync: sa.inspect(sync).has_table(schema_revision.name)):
        result = await connection.execute(
            sa.select(
                schema_revision.c.revision,
                schema_revision.c.down_revision,
                schema_revision.c.schema_change,
            )
        )
        recorded = {row[0]: Recorded(row[1], row[2]) for row in result.all()}
    return compatibility_problem(current, head, recorded)
