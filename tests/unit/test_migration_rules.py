"""Expand/contract, enforced where a machine can (docs/migrations.md): every migration
declares its `schema_change`, and an "expand" migration's SQL neither removes nor
tightens anything the previous release uses."""

from __future__ import annotations

import io
import re

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from banking.core.migrate import MIGRATIONS_DIR, alembic_config
from banking.core.schema_compat import SCHEMA_CHANGES
from tests.support.rolling import CONTRACT, EXPAND, rolling_config

SCRIPTS = ScriptDirectory(str(MIGRATIONS_DIR))
REVISIONS = [script.revision for script in SCRIPTS.walk_revisions()]

# What an additive migration must not contain (PostgreSQL's SQL, rendered offline): each
# would make the previous release fail or lose what it relies on.
NOT_ADDITIVE = {
    "drops a table": re.compile(r"\bDROP TABLE\b"),
    "drops a column": re.compile(r"\bDROP COLUMN\b"),
    "drops a constraint": re.compile(r"\bDROP CONSTRAINT\b"),
    "renames": re.compile(r"\bRENAME\b"),
    "changes a column's type": re.compile(r"\bALTER COLUMN\b[^;]*\bTYPE\b"),
    "makes a column NOT NULL": re.compile(r"\bSET NOT NULL\b"),
    "adds a constraint to an existing table": re.compile(r"\bADD CONSTRAINT\b"),
    "deletes rows": re.compile(r"\b(DELETE FROM|TRUNCATE)\b"),
}
ADD_NOT_NULL = re.compile(r"\bADD COLUMN\b(?P<column>[^;]*)")


def violations(sql: str) -> list[str]:
    found = [rule for rule, pattern in NOT_ADDITIVE.items() if pattern.search(sql.upper())]
    for match in ADD_NOT_NULL.finditer(sql.upper()):
        column = match["column"]
        if "NOT NULL" in column and "DEFAULT" not in column:
            found.append("adds a NOT NULL column without a default")
    return found


def offline_sql(revision: str, *, rolling: bool = False) -> str:
    """The PostgreSQL SQL of one migration step, rendered without a database."""
    url = "postgresql+asyncpg://offline/rendering"
    config = rolling_config(url) if rolling else alembic_config(url)
    buffer = io.StringIO()
    config.output_buffer = buffer
    scripts = ScriptDirectory.from_config(config)
    script = scripts.get_revision(revision)
    assert script is not None
    down = script.down_revision
    assert isinstance(down, str), "one line of history"
    command.upgrade(config, f"{down}:{revision}", sql=True)
    sql = buffer.getvalue()
    # Alembic's own bookkeeping, not the migration's.
    return "\n".join(line for line in sql.splitlines() if "alembic_version" not in line)


@pytest.mark.parametrize("revision", REVISIONS)
def test_every_migration_declares_its_schema_change(revision: str) -> None:
    script = SCRIPTS.get_revision(revision)
    assert script is not None
    declared = getattr(script.module, "schema_change", None)
    assert declared in SCHEMA_CHANGES, (
        f"migration {revision} must set schema_change to one of {SCHEMA_CHANGES} "
        "(docs/migrations.md)"
    )


EXPANDING = [
    revision
    for revision in REVISIONS
    if getattr(SCRIPTS.get_revision(revision).module, "schema_change", None) == "expand"  # type: ignore[union-attr]
]


@pytest.mark.parametrize("revision", EXPANDING)
def test_an_expand_migration_only_adds(revision: str) -> None:
    sql = offline_sql(revision)
    assert f"-> {revision}" in sql
    assert violations(sql) == []


def test_the_check_catches_a_migration_that_removes() -> None:
    # The test-only contract migration drops a table: declared "expand", it would fail.
    assert violations(offline_sql(CONTRACT, rolling=True)) == ["drops a table"]
    assert violations(offline_sql(EXPAND, rolling=True)) == []


def test_the_rules_read_sql_as_intended() -> None:
    assert violations("ALTER TABLE card ADD COLUMN n INTEGER NOT NULL;") == [
        "adds a NOT NULL column without a default"
    ]
    assert violations("ALTER TABLE card ADD COLUMN n INTEGER DEFAULT '0' NOT NULL;") == []
    assert violations("ALTER TABLE card ALTER COLUMN n TYPE BIGINT;") == ["changes a column's type"]
    assert violations("ALTER TABLE card ALTER COLUMN n SET NOT NULL;") == [
        "makes a column NOT NULL"
    ]
