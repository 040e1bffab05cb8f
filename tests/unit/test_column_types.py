"""Every foreign-key column names its type.

A column declared only by its foreign key gets its type when the referenced table is
defined, which depends on import order; a statement built at import time before that
(the ledger's prepared locks, say) keeps a type-less parameter, and on SQLite a UUID then
cannot be bound (a deposit answered 500 in `banking serve`, whose imports run in another
order than the tests'). Both checks fail on such a column.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "banking"


def test_no_mapped_column_is_declared_by_its_foreign_key_alone() -> None:
    untyped = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "id", None) == "mapped_column"
            ):
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Call) and getattr(first.func, "id", None) == "ForeignKey":
                untyped.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert untyped == []


def test_the_ledgers_prepared_locks_bind_every_parameter_whatever_is_imported_first() -> None:
    """In a fresh interpreter that imports the ledger before anything else."""
    probe = (
        "from sqlalchemy.dialects.sqlite import pysqlite\n"
        "from banking.ledger import service\n"
        "dialect = pysqlite.SQLiteDialect_pysqlite()\n"
        "for statement in (*service._LOCK_TRANSFER.values(), *service._LOCK_ACCOUNTS.values()):\n"
        "    plan = statement.plan(dialect)\n"
        "    for name, processor, _ in plan.binds:\n"
        "        if name.endswith('_id') or name.startswith('id_'):\n"
        "            assert processor is not None, name\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
