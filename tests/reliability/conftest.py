from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.databases import DatabaseFactory
from tests.server import Server

if TYPE_CHECKING:
    from tests.reliability.schema_fuzzing import FuzzServer


@pytest.fixture(scope="session")
def fuzz_server(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzServer]:
    """One live server (its own fresh database) for both schema-fuzz modules, started
    once per test process: under `--dist loadscope` a worker runs their classes mixed,
    largest first, so a server per module would stop and start at almost every class."""
    # Imported here: it builds the app's schema, which other reliability tests do not need.
    from tests.reliability.schema_fuzzing import FuzzServer

    url = database_factory.new_url()
    log_path = tmp_path_factory.mktemp("fuzz-server") / "server.log"
    try:
        with Server(url, log_path=log_path) as server:
            yield FuzzServer.start(server)
    finally:
        database_factory.drop(url)


@pytest.fixture(scope="class")
def fuzz_member(fuzz_server: FuzzServer) -> dict[str, str]:
    """A schema-fuzz class's member (their Authorization header)."""
    return fuzz_server.new_member()
