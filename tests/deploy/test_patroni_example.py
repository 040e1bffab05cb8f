"""deploy/patroni.yml: the replication settings the service's no-loss promise relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "patroni.yml").read_text())
DCS: dict[str, Any] = EXAMPLE["bootstrap"]["dcs"]
PARAMETERS: dict[str, Any] = DCS["postgresql"]["parameters"]


class TestPatroniExample:
    def test_only_a_synchronous_standby_is_promoted_and_commits_wait_for_it(self) -> None:
        assert DCS["synchronous_mode"] is True
        assert DCS["synchronous_mode_strict"] is True
        assert DCS["synchronous_node_count"] >= 1
        assert str(PARAMETERS["synchronous_commit"]) in {"on", "remote_apply"}

    def test_durability_is_not_traded_for_speed(self) -> None:
        assert str(PARAMETERS["fsync"]) == "on"
        assert str(PARAMETERS["full_page_writes"]) == "on"
        assert PARAMETERS["wal_level"] in {"replica", "logical"}

    def test_a_former_primary_can_rejoin_as_a_standby(self) -> None:
        assert DCS["postgresql"]["use_pg_rewind"] is True
        assert str(PARAMETERS["wal_log_hints"]) == "on"

    def test_the_deployment_guide_points_to_it(self) -> None:
        assert "deploy/patroni.yml" in (ROOT / "docs" / "deployment.md").read_text()
