"""docs/API.md is generated from the OpenAPI schema and kept up to date."""

from __future__ import annotations

from pathlib import Path

import pytest

from banking import apidocs
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
        assert "Authentication: bearer access token." in sessions
        assert "| 401 |" in sessions
        assert "`invalid_token`" in sessions

    def test_check_mode_fails_on_a_stale_file_and_names_the_fix(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        stale = tmp_path / "API.md"
        stale.write_text("old\n")
        assert apidocs.main([str(stale), "--check"]) == 1
        assert "run `make docs`" in capsys.readouterr().err
        assert apidocs.main([str(stale)]) == 0
        assert apidocs.main([str(stale), "--check"]) == 0
