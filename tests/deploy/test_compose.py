"""deploy/docker-compose.yml: the services, their wiring, health checks and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine.url import make_url

from tests.deploy.support import (
    COMPOSE_FILE,
    dockerfile_instructions,
    load_compose,
    resolve_banking_command,
)

COMPOSE = load_compose()
SERVICES: dict[str, Any] = COMPOSE["services"]


def _healthcheck(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


class TestServices:
    def test_it_names_the_api_the_migration_job_postgres_and_redis(self) -> None:
        assert set(SERVICES) == {"api", "migrate", "postgres", "redis"}

    def test_the_api_and_the_migration_job_are_built_from_the_dockerfile(self) -> None:
        for name in ("api", "migrate"):
            build = SERVICES[name]["build"]
            context = (COMPOSE_FILE.parent / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file()
            assert SERVICES[name]["image"] == SERVICES["api"]["image"]

    def test_the_api_publishes_port_8000(self) -> None:
        assert SERVICES["api"]["ports"] == ["8000:8000"]

    def test_the_api_serves_the_image_command_with_two_workers(self) -> None:
        command = SERVICES["api"]["command"]
        (image_cmd,) = [item for item in dockerfile_instructions() if item.keyword == "CMD"]
        assert command == image_cmd.exec_form()
        assert command[command.index("--workers") + 1] == "2"
        assert resolve_banking_command(command[1:])[0] == ["serve"]

    def test_migrations_run_once_as_a_separate_job(self) -> None:
        migrate = SERVICES["migrate"]
        assert migrate["command"] == ["banking", "migrate"]
        assert resolve_banking_command(migrate["command"][1:])[0] == ["migrate"]
        assert migrate["restart"] == "no"
        assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}

    def test_the_api_waits_for_the_migration_and_healthy_backing_services(self) -> None:
        assert SERVICES["api"]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }

    def test_postgres_keeps_its_data_in_a_named_volume(self) -> None:
        volumes = SERVICES["postgres"]["volumes"]
        assert volumes == ["pgdata:/var/lib/postgresql/data"]
        assert "pgdata" in COMPOSE["volumes"]


class TestHealthChecks:
    def test_every_service_that_others_wait_for_has_a_health_check(self) -> None:
        assert "/v1/health/ready" in _healthcheck("api")
        assert "pg_isready" in _healthcheck("postgres")
        assert "redis-cli ping" in _healthcheck("redis")

    def test_the_api_check_runs_the_image_health_check(self) -> None:
        from tests.deploy.support import healthcheck_command

        assert SERVICES["api"]["healthcheck"]["test"][1:] == healthcheck_command(
            dockerfile_instructions()
        )

    def test_the_api_gets_longer_to_stop_than_its_own_drain_timeout(self) -> None:
        from banking.core.config import Settings

        grace = SERVICES["api"]["stop_grace_period"]
        assert grace.endswith("s")
        assert int(grace[:-1]) > Settings.model_fields["shutdown_timeout_s"].default


class TestEnvironment:
    def test_the_app_reads_its_env_file_from_the_documented_example(self) -> None:
        for name in ("api", "migrate"):
            (env_file,) = SERVICES[name]["env_file"]
            example = COMPOSE_FILE.parent / (env_file + ".example")
            assert example.is_file(), f"{env_file} has no checked-in example"

    def test_the_database_url_points_at_the_postgres_service(self) -> None:
        environment = SERVICES["api"]["environment"]
        postgres = SERVICES["postgres"]["environment"]
        url = make_url(
            environment["DATABASE_URL"].replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "pw")
        )
        assert url.host == "postgres"
        assert url.username == postgres["POSTGRES_USER"]
        assert url.database == postgres["POSTGRES_DB"]
        assert environment["DATABASE_URL"].count("${POSTGRES_PASSWORD") == 1
        assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")

    def test_redis_is_used_for_shared_rate_limits(self) -> None:
        assert SERVICES["api"]["environment"]["REDIS_URL"].startswith("redis://redis:6379/")

    def test_the_api_runs_in_production_mode(self) -> None:
        assert SERVICES["api"]["environment"]["APP_ENV"] == "prod"

    def test_no_secret_is_written_in_the_compose_file(self) -> None:
        text = Path(COMPOSE_FILE).read_text()
        for name in ("JWT_SECRET", "CARD_ENCRYPTION_KEY", "CARD_NETWORK_API_KEY", "AUDIT_KEY"):
            assert name not in text
