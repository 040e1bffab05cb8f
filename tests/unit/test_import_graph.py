"""No import circle anywhere in `banking`: a module never imports, directly or through
others, a module that imports it back. Layering itself is import-linter's job (`make lint`,
pyproject's [tool.importlinter]); this catches circles inside one layer or one package too.

The graph is grimp's (the library import-linter builds on), read from the source files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every group of modules that import each other in a circle (strongly connected
    components of more than one module), each sorted, sorted by first module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        # Iterative Tarjan: (module, its imports still to visit).
        work: list[tuple[str, list[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, sorted(graph.find_modules_directly_imported_by(root))))
        while work:
            module, pending = work[-1]
            if pending:
                imported = pending.pop()
                if imported not in index:
                    index[imported] = low[imported] = counter
                    counter += 1
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append(
                        (imported, sorted(graph.find_modules_directly_imported_by(imported)))
                    )
                elif imported in on_stack:
                    low[module] = min(low[module], index[imported])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def test_banking_has_no_import_circle() -> None:
    graph = grimp.build_graph("banking", cache_dir=None)
    assert import_cycles(graph) == []


def test_no_module_imports_the_cli_root_back() -> None:
    """The CLI root (banking/cli/__init__.py) only assembles the command groups; they share
    cli/common.py, so the root can import every group without a circle."""
    graph = grimp.build_graph("banking", cache_dir=None)
    importers = graph.find_modules_that_directly_import("banking.cli")
    assert importers <= {"banking.cli.__main__"}
    assert "banking.cli.common" in graph.find_modules_directly_imported_by("banking.cli.ledger")


def test_a_planted_circle_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a package whose modules import each other through a third."""
    package = tmp_path / "planted_circle"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from planted_circle import b\n")
    (package / "b.py").write_text("def f():\n    from planted_circle import c\n")
    (package / "c.py").write_text("import planted_circle.a\n")
    (package / "d.py").write_text("from planted_circle import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "planted_circle", raising=False)

    graph = grimp.build_graph("planted_circle", cache_dir=None)

    assert import_cycles(graph) == [["planted_circle.a", "planted_circle.b", "planted_circle.c"]]
