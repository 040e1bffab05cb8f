"""Which later schema a running release accepts (core/schema_compat.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from banking.core.schema_compat import Recorded, compatibility_problem, declared_change

HEAD = "0012"


def _chain(*steps: tuple[str, str]) -> dict[str, Recorded]:
    """Revisions after HEAD, each (revision, schema_change), each on the one before."""
    recorded: dict[str, Recorded] = {}
    down = HEAD
    for revision, change in steps:
        recorded[revision] = Recorded(down, change)
        down = revision
    return recorded


class TestCompatibility:
    def test_the_code_head_is_accepted(self) -> None:
        assert compatibility_problem([HEAD], HEAD, {}) is None

    def test_later_expand_migrations_are_accepted(self) -> None:
        recorded = _chain(("a1", "expand"), ("a2", "expand"))
        assert compatibility_problem(["a1"], HEAD, recorded) is None
        assert compatibility_problem(["a2"], HEAD, recorded) is None

    def test_a_contract_on_this_release_is_accepted(self) -> None:
        recorded = _chain(("c1", "contract"))
        assert compatibility_problem(["c1"], HEAD, recorded) is None

    def test_a_contract_of_a_later_release_is_refused(self) -> None:
        recorded = _chain(("a1", "expand"), ("c2", "contract"))
        problem = compatibility_problem(["c2"], HEAD, recorded)
        assert problem is not None
        assert "c2 (contract) is not compatible with this release (head 0012)" in problem

    def test_an_expand_after_a_late_contract_does_not_hide_it(self) -> None:
        recorded = _chain(("a1", "expand"), ("c2", "contract"), ("a3", "expand"))
        assert compatibility_problem(["a3"], HEAD, recorded) is not None

    def test_a_breaking_migration_is_refused(self) -> None:
        recorded = _chain(("a1", "expand"), ("b2", "breaking"), ("a3", "expand"))
        problem = compatibility_problem(["a3"], HEAD, recorded)
        assert problem is not None
        assert "b2 (breaking)" in problem

    def test_an_older_database_is_behind(self) -> None:
        assert compatibility_problem(["0006"], HEAD, {}) == (
            "the database is at migration ['0006'], the code needs 0012"
        )

    def test_an_unknown_line_or_no_revision_is_refused(self) -> None:
        recorded = {"x1": Recorded("x0", "expand"), "x0": Recorded("x1", "expand")}
        assert compatibility_problem(["x1"], HEAD, recorded) is not None  # a cycle ends
        assert compatibility_problem([], HEAD, {}) is not None
        assert compatibility_problem(["a1", "b1"], HEAD, _chain(("a1", "expand"))) is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("expand", "expand"), ("contract", "contract"), ("breaking", "breaking"),
     ("additive", "breaking"), (None, "breaking")],
)  # fmt: skip
def test_an_undeclared_or_unknown_change_counts_as_breaking(
    value: str | None, expected: str
) -> None:
    module = SimpleNamespace() if value is None else SimpleNamespace(schema_change=value)
    assert declared_change(module) == expected
