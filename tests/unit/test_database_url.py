"""DATABASE_URL forms people paste, as the service runs them."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine.url import make_url

from banking.core.config import Settings


def _url(value: str) -> str:
    return Settings(_env_file=None, database_url=value).database_url  # type: ignore[call-arg]


class TestSeveralHosts:
    def test_a_libpq_host_list_reaches_asyncpg_as_hosts_and_ports(self) -> None:
        url = _url("postgresql://bank@db1:5432,db2:5433/bank?target_session_attrs=read-write")
        assert url == (
            "postgresql+asyncpg://bank@/bank?host=db1:5432&host=db2:5433"
            "&target_session_attrs=read-write"
        )
        _args, options = PGDialect_asyncpg().create_connect_args(make_url(url))
        assert options["host"] == ["db1", "db2"]
        assert options["port"] == [5432, 5433]
        assert options["target_session_attrs"] == "read-write"
        assert options["user"] == "bank"
        assert options["database"] == "bank"

    def test_hosts_without_ports_and_a_password_are_kept(self) -> None:
        url = _url("postgres://bank:secret@db1,db2/bank")
        assert url == "postgresql+asyncpg://bank:secret@/bank?host=db1&host=db2"
        assert make_url(url).password == "secret"

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgresql://bank@db1:5432/bank", "postgresql+asyncpg://bank@db1:5432/bank"),
            ("sqlite:///var/bank.db", "sqlite+aiosqlite:///var/bank.db"),
        ],
    )
    def test_one_host_is_left_as_given(self, given: str, expected: str) -> None:
        assert _url(given) == expected
