"""The high-availability tests build PostgreSQL clusters of their own and take a minute
or two, so the ordinary suites (`make test`, `make test-pg`) skip them; `make test-ha`
(HA_TESTS=1) runs them, and `.ci/run` calls it."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("HA_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="high-availability cluster tests: run them with `make test-ha`")
    for item in items:
        if "tests/ha/" in item.nodeid:
            item.add_marker(skip)
