"""The bank's public details, for clients to show before anyone logs in."""

from __future__ import annotations

import httpx
import pytest


class TestMeta:
    @pytest.mark.parametrize(
        "settings_overrides",
        [{"bank_name": "Harbour Bank", "bank_timezone": "America/New_York"}],
        indirect=True,
    )
    async def test_the_bank_name_and_time_zone_are_public_and_come_from_the_settings(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/meta")
        assert response.status_code == 200
        assert response.json() == {"bank_name": "Harbour Bank", "time_zone": "America/New_York"}
