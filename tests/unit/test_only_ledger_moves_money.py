"""Only `banking.ledger` writes journal entries, postings and cached balances.

The house plan's money rule ("only `ledger/` moves money") as a check that can fail: every
module under src/banking outside `banking/ledger/` is parsed, and any statement that would
INSERT, UPDATE or DELETE the `journal_entry` or `posting` tables, or set an account's cached
`balance_minor` / `held_minor`, is reported with its file and line. It sees:

- SQLAlchemy Core: `insert(X)`, `update(X)`, `delete(X)`, `X.insert()`, `X.update()`,
  `X.delete()`, where X is `JournalEntry`/`Posting` (however imported or aliased) or a
  name bound to their `__table__`;
- on the `account` table, `.values(balance_minor=...)` / `.values({"held_minor": ...})` /
  `{ACCOUNT.c.balance_minor: ...}`, and `.values(d)` / `**d` whose columns are built
  elsewhere (outside the ledger, account columns are named literally); ORM attribute writes
  `account.balance_minor = ...` / `+=`;
- ORM rows built outside the ledger: `JournalEntry(...)`, `Posting(...)`;
- raw SQL in string literals: `INSERT INTO posting`, `UPDATE journal_entry`,
  `DELETE FROM posting`, `UPDATE account SET ... balance_minor`.

Migrations are schema history (and run before any money moves), so they are not scanned.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import banking

PACKAGE = Path(banking.__file__).parent
PROTECTED_CLASSES = {"JournalEntry", "Posting"}
BALANCE_COLUMNS = {"balance_minor", "held_minor"}
DML_FUNCTIONS = {"insert", "update", "delete"}
RAW_DML = re.compile(
    r"\b(insert\s+into|update|delete\s+from)\s+\"?(journal_entry|posting)\b"
    r"|\bupdate\s+\"?account\"?\s+set\b[^;]*\b(balance_minor|held_minor)\b",
    re.IGNORECASE | re.DOTALL,
)


def _bound_names(tree: ast.AST, classes: set[str]) -> tuple[set[str], set[str]]:
    """The names a module binds to these ORM classes (imports, aliases) and to their tables
    (`POSTING = cast(Table, Posting.__table__)`): (class names, every name)."""
    class_names = set(classes)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in classes:
                    class_names.add(alias.asname or alias.name)
    names = set(class_names)
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            if not _refers_to(value, names, classes):
                continue
            for target in targets:
                if isinstance(target, ast.Name) and target.id not in names:
                    names.add(target.id)
                    changed = True
    return class_names, names


def _refers_to(node: ast.AST, names: set[str], classes: set[str]) -> bool:
    """A table or class expression for one of `classes`: `POSTING`, `Posting`,
    `models.Posting`, `Posting.__table__`, `cast(Table, Posting.__table__)`, `X.alias()`."""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Attribute):
        if node.attr in classes:
            return True
        return node.attr in {"__table__", "alias"} and _refers_to(node.value, names, classes)
    if isinstance(node, ast.Call):
        return _refers_to(node.func, names, classes) or any(
            _refers_to(arg, names, classes) for arg in node.args
        )
    return False


def _dml_target(call: ast.Call) -> tuple[str, ast.expr] | None:
    """(`insert`/`update`/`delete`, the table) for `insert(X)` or `X.insert()`."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in DML_FUNCTIONS and call.args:
        return func.id, call.args[0]
    if isinstance(func, ast.Attribute) and func.attr in DML_FUNCTIONS:
        if call.args and isinstance(func.value, ast.Name) and func.value.id == "sa":
            return func.attr, call.args[0]  # `sa.insert(X)`
        return func.attr, func.value
    return None


def _statement_root(node: ast.expr) -> ast.Call | None:
    """The `insert(X)`/`update(X)` call a method chain (`.where(...).values(...)`) starts from."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if _dml_target(node) is not None:
            return node
        node = node.func.value
    if isinstance(node, ast.Call) and _dml_target(node) is not None:
        return node
    return None


def _balance_key(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and node.value in BALANCE_COLUMNS:
        return True
    return isinstance(node, ast.Attribute) and node.attr in BALANCE_COLUMNS


def money_writes(source: str, filename: str = "<module>") -> list[str]:
    """Each statement in `source` that writes the ledger's tables, as `file:line what`."""
    tree = ast.parse(source, filename)
    ledger_classes, ledger_names = _bound_names(tree, PROTECTED_CLASSES)
    _, account_names = _bound_names(tree, {"Account"})
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', 0)} {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            target = _dml_target(node)
            if target is not None and _refers_to(target[1], ledger_names, PROTECTED_CLASSES):
                spelled = f"{target[0]}()" if isinstance(func, ast.Name) else f".{target[0]}()"
                report(node, f"{spelled} of a ledger table")
            if isinstance(func, ast.Name) and func.id in ledger_classes:
                report(node, f"{func.id}(...) builds a ledger row")
            if isinstance(func, ast.Attribute) and func.attr == "values":
                root = _statement_root(func.value)
                root_target = _dml_target(root) if root is not None else None
                if root_target is None or not _refers_to(
                    root_target[1], account_names, {"Account"}
                ):
                    continue
                keys: list[ast.AST] = [
                    ast.Constant(kw.arg) for kw in node.keywords if kw.arg is not None
                ]
                unnamed = any(kw.arg is None for kw in node.keywords)
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        keys.extend(key for key in arg.keys if key is not None)
                        unnamed = unnamed or None in arg.keys
                    else:
                        unnamed = True
                if any(_balance_key(key) for key in keys):
                    report(node, "sets a cached balance")
                elif unnamed:
                    # Columns built elsewhere (`.values(values)`, `**changes`): they could
                    # be the balance; outside the ledger, name account columns literally.
                    report(node, "sets account columns it does not name")
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for assigned in targets:
                if isinstance(assigned, ast.Attribute) and assigned.attr in BALANCE_COLUMNS:
                    report(node, f"assigns .{assigned.attr}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and RAW_DML.search(node.value)
        ):
            report(node, "raw SQL writes a ledger table")
    return sorted(found)


def _modules_outside_the_ledger() -> list[Path]:
    skipped = (PACKAGE / "ledger", PACKAGE / "migrations")
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if not any(path.is_relative_to(folder) for folder in skipped)
    )


def test_only_the_ledger_writes_entries_postings_and_balances() -> None:
    modules = _modules_outside_the_ledger()
    assert len(modules) > 50  # the scan really walks the package
    found = [
        finding
        for path in modules
        for finding in money_writes(path.read_text(), str(path.relative_to(PACKAGE)))
    ]
    assert found == []


def test_the_scan_recognises_the_ledgers_own_writes() -> None:
    """The ledger's real code is written in the styles the scan looks for: scanning it
    (it is exempt) finds its inserts of entries and postings and its balance updates."""
    found = money_writes((PACKAGE / "ledger" / "service.py").read_text(), "service.py")
    assert any("insert() of a ledger table" in finding for finding in found)
    assert any("sets account columns it does not name" in finding for finding in found)
    holds = money_writes((PACKAGE / "ledger" / "holds.py").read_text(), "holds.py")
    assert any("sets account columns it does not name" in finding for finding in holds)


PLANTED = """
from sqlalchemy import delete, insert, text, update
from sqlalchemy import Table
from typing import cast
from banking.accounts.models import Account
from banking.ledger import models as ledger_models
from banking.ledger.models import JournalEntry, Posting as P

POSTINGS = cast(Table, P.__table__)
ENTRIES = JournalEntry.__table__
ACCOUNT = cast(Table, Account.__table__)


def sneaky(connection, session, account):
    connection.execute(insert(POSTINGS).values(amount_minor=1))
    connection.execute(ENTRIES.update().values(status="posted"))
    connection.execute(delete(ledger_models.Posting))
    connection.execute(update(ACCOUNT).values(balance_minor=ACCOUNT.c.balance_minor + 1))
    connection.execute(update(ACCOUNT).values({ACCOUNT.c.held_minor: 0}))
    session.add(P(amount_minor=5))
    account.balance_minor += 5
    connection.execute(text("UPDATE account SET status = 'x', held_minor = 0 WHERE id = :id"))
    connection.execute(text("insert into posting (id) values (1)"))
    changes = {"balance_minor": 0}
    connection.execute(update(ACCOUNT).where(ACCOUNT.c.id == 1).values(changes))


def innocent(connection):
    connection.execute(update(ACCOUNT).values(status="frozen"))
    connection.execute(insert(APPROVAL).values(held_minor=5))
    connection.execute(POSTINGS.select())
    connection.execute(text("SELECT balance_minor FROM account"))
"""


def test_a_planted_money_write_outside_the_ledger_is_found_line_by_line() -> None:
    """The check can fail: each way of writing the ledger's tables in a module outside it."""
    assert money_writes(PLANTED, "planted.py") == [
        "planted.py:15 insert() of a ledger table",
        "planted.py:16 .update() of a ledger table",
        "planted.py:17 delete() of a ledger table",
        "planted.py:18 sets a cached balance",
        "planted.py:19 sets a cached balance",
        "planted.py:20 P(...) builds a ledger row",
        "planted.py:21 assigns .balance_minor",
        "planted.py:22 raw SQL writes a ledger table",
        "planted.py:23 raw SQL writes a ledger table",
        "planted.py:25 sets account columns it does not name",
    ]
