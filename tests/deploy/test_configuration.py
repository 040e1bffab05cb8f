"""One source of truth for configuration: `Settings.model_fields`.

Every variable a deployment file sets must be a setting the service reads (a typo there
is silently ignored at run time), and every setting must be documented in README's
configuration table and in .env.example.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from banking.core.config import Settings
from tests.deploy.support import COMPOSE_FILE, ROOT, dotenv_names, load_compose

SETTINGS = {name.upper() for name in Settings.model_fields}
ENV_EXAMPLE = ROOT / ".env.example"
PROD_EXAMPLE = ROOT / "deploy" / ".env.prod.example"
# Variables of the postgres image itself, not of the service.
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}


def readme_configuration_table() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, flags=re.MULTILINE)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


class TestEveryVariableSetIsASetting:
    def test_in_the_env_example(self) -> None:
        assert set(dotenv_names(ENV_EXAMPLE)) - SETTINGS == set()

    def test_in_the_production_env_example(self) -> None:
        assert set(dotenv_names(PROD_EXAMPLE)) - SETTINGS == set()

    @pytest.mark.parametrize("service", ["api", "migrate"])
    def test_in_the_compose_file(self, service: str) -> None:
        environment = load_compose()["services"][service]["environment"]
        assert set(environment) - SETTINGS == set()

    def test_the_postgres_service_sets_only_the_image_variables(self) -> None:
        environment = load_compose()["services"]["postgres"]["environment"]
        assert set(environment) <= POSTGRES_IMAGE_VARIABLES


class TestEverySettingIsDocumented:
    def test_in_the_readme_configuration_table_exactly_once(self) -> None:
        documented = readme_configuration_table()
        assert sorted(documented) == sorted(SETTINGS), (
            f"missing from README: {sorted(SETTINGS - set(documented))}; "
            f"not settings: {sorted(set(documented) - SETTINGS)}"
        )

    def test_in_the_env_example(self) -> None:
        names = dotenv_names(ENV_EXAMPLE)
        assert SETTINGS - set(names) == set()
        active = [
            line.split("=")[0]
            for line in ENV_EXAMPLE.read_text().splitlines()
            if "=" in line and not line.startswith("#")
        ]
        assert len(active) == len(set(active)), "a variable is set twice"

    def test_the_readme_table_states_each_default(self) -> None:
        text = (ROOT / "README.md").read_text()
        for name in SETTINGS:
            row = re.search(rf"^\| `{name}` \|([^|]*)\|", text, flags=re.MULTILINE)
            assert row is not None, f"{name} is not in the table"
            assert row.group(1).strip(), f"{name} has no default column"


class TestTheExamplesParse:
    @pytest.mark.usefixtures("clean_environment")
    @pytest.mark.parametrize("path", [ENV_EXAMPLE, PROD_EXAMPLE], ids=lambda p: p.name)
    def test_the_settings_accept_the_example_file_as_it_is(self, path: Path) -> None:
        settings = Settings(_env_file=path)  # type: ignore[call-arg]
        assert settings.db_pool_size >= 1

    @pytest.mark.usefixtures("clean_environment")
    def test_the_compose_environment_parses_as_production_settings(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        environment = load_compose()["services"]["api"]["environment"]
        for name, value in environment.items():
            monkeypatch.setenv(
                name, value.replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "pw")
            )
        settings = Settings(_env_file=PROD_EXAMPLE)  # type: ignore[call-arg]
        assert settings.is_prod
        assert settings.database_url.startswith("postgresql+asyncpg://banking:pw@postgres:5432/")
        assert settings.effective_log_format.value == "json"


def test_the_compose_file_is_next_to_its_env_example() -> None:
    assert COMPOSE_FILE.parent == PROD_EXAMPLE.parent
