"""docs/API.md is generated from the OpenAPI schema and kept up to date."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from tools import apidocs

from tests.deploy.support import ROOT

API_MD = ROOT / "docs" / "API.md"


class TestApiReference:
    def test_docs_api_md_is_up_to_date(self) -> None:
        expected = apidocs.render(apidocs.build_schema())
        current = API_MD.read_text() if API_MD.exists() else ""
        assert current == expected, "docs/API.md is out of date: run `make docs`"

    def test_rendering_is_deterministic(self) -> None:
        assert apidocs.render(apidocs.build_schema()) == apidocs.render(apidocs.build_schema())

    def test_every_operation_of_the_schema_is_documented(self) -> None:
        schema = apidocs.build_schema()
        text = apidocs.render(schema)
        for path, item in schema["paths"].items():
            for method in item:
                assert f"### `{method.upper()} {path}`" in text

    def test_test_only_routes_are_left_out(self) -> None:
        assert "/v1/test/" not in apidocs.render(apidocs.build_schema())

    def test_error_codes_named_in_a_description_are_listed_with_their_status(self) -> None:
        text = apidocs.render(apidocs.build_schema())
        signup = text.split("### `POST /v1/auth/signup`", 1)[1].split("\n### ", 1)[0]
        assert "| 409 |" in signup
        assert "`email_taken`" in signup.split("| 409 |", 1)[1].split("\n", 1)[0]

    def test_authenticated_operations_list_the_401_answer(self) -> None:
        text = apidocs.render(apidocs.build_schema())
        sessions = text.split("### `GET /v1/auth/sessions`", 1)[1].split("\n### ", 1)[0]
        assert (
            "Authentication: bearer access token (`Authorization: Bearer <access_token>`)."
            in sessions
        )
        assert "| 401 |" in sessions
        assert "`invalid_token`" in sessions
        assert "X-Network-Key" not in sessions

    def test_card_network_operations_take_the_network_key_and_answer_its_code(self) -> None:
        schema = apidocs.build_schema()
        text = apidocs.render(schema)
        section = text.split("\n## card network\n", 1)[1].split("\n## ", 1)[0]
        network_paths = [
            (method, path)
            for path, item in schema["paths"].items()
            for method, operation in item.items()
            if operation.get("tags") == ["card network"]
        ]
        assert len(network_paths) == 5
        for method, path in network_paths:
            operation = section.split(f"### `{method.upper()} {path}`", 1)[1].split("\n### ", 1)[0]
            assert "Authentication: `X-Network-Key` header:" in operation, path
            assert "bearer" not in operation.lower(), path
            unauthorized = next(
                line for line in operation.splitlines() if line.startswith("| 401 |")
            )
            assert "`invalid_network_key`" in unauthorized, path
            assert "`invalid_token`" not in unauthorized, path

    async def test_the_documented_401_is_what_the_network_routes_answer(
        self, client: httpx.AsyncClient
    ) -> None:
        for headers in ({}, {"Authorization": "Bearer not-a-network-key"}):
            response = await client.get(f"/v1/card-authorizations/{uuid.uuid4()}", headers=headers)
            assert response.status_code == 401
            assert response.json()["code"] == "invalid_network_key"

    def test_an_unknown_security_scheme_is_refused_not_rendered_as_bearer(self) -> None:
        schema = apidocs.build_schema()
        schema["components"]["securitySchemes"]["Cookie"] = {
            "type": "apiKey",
            "in": "cookie",
            "name": "sid",
        }
        operation = schema["paths"]["/v1/auth/sessions"]["get"]
        operation["security"] = [{"Cookie": []}]
        with pytest.raises(ValueError, match="Cookie"):
            apidocs.render(schema)

    def test_check_mode_fails_on_a_stale_file_and_names_the_fix(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        stale = tmp_path / "API.md"
        stale.write_text("old\n")
        assert apidocs.main([str(stale), "--check"]) == 1
        assert "run `make docs`" in capsys.readouterr().err
        assert apidocs.main([str(stale)]) == 0
        assert apidocs.main([str(stale), "--check"]) == 0
