"""Settings from environment variables (and `.env`), validated once at start-up.

In `dev` and `test`, missing secrets are generated once and kept under `./var/` so the
service runs with no set-up: each file is created exclusively with mode 0600 (never
readable by others, not even for a moment), and processes starting at once all read the
one value the first of them wrote. In `prod` a missing, default or short secret is a start-up
error: `Settings.check_production()` raises `ConfigError` with the offending names.
"""

from __future__ import annotations

import os
import secrets
import time
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

VAR_DIR = Path("var")
SECRET_NAMES = ("jwt_secret", "card_encryption_key", "card_network_api_key", "audit_key")
MIN_SECRET_BYTES = 32
# Values that must never reach production even if they are long enough.
KNOWN_DEFAULTS = frozenset(
    {"", "changeme", "change-me", "secret", "dev", "test", "please-change-me-in-production"}
)


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message names every problem."""


class AppEnv(StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


class LogFormat(StrEnum):
    json = "json"
    console = "console"


def _hosts_as_query(url: str) -> str:
    """`postgresql+asyncpg://u@h1:5432,h2:5432/db?...` (the libpq form of several hosts)
    as `postgresql+asyncpg://u@/db?host=h1:5432&host=h2:5432&...`, the form SQLAlchemy
    parses and hands to asyncpg, which connects to the first host that suits
    `target_session_attrs` (tests/unit/test_database_url.py)."""
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme.startswith("postgresql"):
        return url
    authority, _slash, tail = rest.partition("/")
    userinfo, at, hostlist = authority.rpartition("@")
    if "," not in hostlist:
        return url
    database, _question, query = tail.partition("?")
    hosts = "&".join(f"host={host}" for host in hostlist.split(",") if host)
    query = f"{hosts}&{query}" if query else hosts
    return f"{scheme}://{userinfo}{at}/{database}?{query}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    app_env: AppEnv = AppEnv.dev
    database_url: str = f"sqlite+aiosqlite:///./{VAR_DIR}/banking.db"
    jwt_secret: str = ""
    card_encryption_key: str = ""
    card_network_api_key: str = ""
    # Audit chain (see audit/): the key that seals rows and signs checkpoints, and retired
    # keys (comma-separated) that still verify the rows and checkpoints they made.
    audit_key: str = ""
    audit_previous_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    log_format: LogFormat | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_url: str | None = None
    sentry_dsn: str | None = None

    # Database tuning.
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_busy_timeout_ms: int = Field(default=5000, ge=0)
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    # Optional PostgreSQL read replica (core/replica.py): statements and history read
    # there, except a member's own reads shortly after their writes.
    database_read_url: str | None = None
    read_replica_max_lag_s: float = Field(default=5.0, gt=0)
    read_your_writes_s: float = Field(default=30.0, ge=0)

    # HTTP.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    shutdown_timeout_s: int = Field(default=20, ge=1)
    # How long an idle keep-alive connection stays open. Longer than any client's or load
    # balancer's own idle timeout (httpx 5 s, AWS ALB 60 s), so the other side always
    # closes first: a server that closes first can race a request being sent on the same
    # connection, which the client sees as a reset (tests/e2e/test_keep_alive.py).
    http_keep_alive_s: int = Field(default=75, ge=1, le=3600)
    trusted_proxies: str = "127.0.0.1"

    # Identity (see identity/).
    access_token_ttl_s: int = Field(default=15 * 60, ge=30)
    refresh_token_ttl_s: int = Field(default=14 * 24 * 3600, ge=60)
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_duration_s: int = Field(default=15 * 60, ge=1)
    # Argon2 runs in a thread pool of this many threads; this many more hashes may wait.
    password_hash_workers: int = Field(default=1, ge=1, le=16)
    password_hash_queue: int = Field(default=32, ge=0, le=10_000)

    # Cards (see cards/): retired encryption keys, kept until `banking cards rotate-key`.
    card_encryption_previous_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    card_bin: str = Field(default="400000", pattern=r"^[0-9]{6,8}$")
    # Days an approved card authorization holds its amount before it lapses unreleased.
    card_hold_days: int = Field(default=7, ge=1, le=60)
    # How often each API process releases lapsed card holds (ledger/sweeper.py; on
    # PostgreSQL one process at a time); 0: never (then run `banking holds expire`).
    hold_sweep_interval_s: float = Field(default=30, ge=0)
    # Consecutive wrong CVVs or expiry dates after which the bank freezes the card (only
    # staff unfreeze).
    card_cvv_max_failures: int = Field(default=3, ge=1, le=100)

    # Money (see ledger/ and payments/). Amounts are minor units of the account's currency.
    max_movement_minor: int = Field(default=100_000_000, ge=1, le=10**15)
    max_balance_minor: int = Field(default=10**13, ge=1, le=10**15)
    daily_outgoing_limit_minor: int = Field(default=50_000_000, ge=1, le=10**15)
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=24 * 3600)
    # How often each API process deletes expired idempotency records; 0: never (then run
    # `banking idempotency purge` on a schedule).
    idempotency_purge_interval_s: int = Field(default=300, ge=0)
    # Savings interest (see interest/): the product's nominal annual rate in basis points
    # (150 = 1.50 %), used when staff set none on the account; how often each API process
    # runs the interest job (accrue through yesterday, post last month; 0: never, then run
    # `banking interest accrue` and `banking interest post` on a schedule).
    savings_rate_bps: int = Field(default=150, ge=0, le=10_000)
    interest_job_interval_s: int = Field(default=3600, ge=0)
    # Four-eyes approvals (see approvals/): a member's transfer above the threshold of its
    # currency (APPROVAL_THRESHOLDS_MINOR, JSON, e.g. {"JPY": 5000000}, else
    # APPROVAL_THRESHOLD_MINOR) waits for a staff approval, with the amount held; staff may
    # raise an account's threshold. A pending approval lapses after APPROVAL_TTL_S.
    approval_threshold_minor: int = Field(default=10_000_000, ge=1, le=10**15)
    approval_thresholds_minor: dict[str, int] = Field(default_factory=dict)
    approval_ttl_s: int = Field(default=3 * 24 * 3600, ge=60)
    # SQLite: how many queued movements may share one COMMIT (group commit).
    ledger_group_commit_max: int = Field(default=64, ge=1, le=1024)

    # Events and webhooks (see events/). The dispatcher numbers new events and delivers
    # webhooks every EVENTS_DISPATCH_INTERVAL_S in each API process (one leads on
    # PostgreSQL); 0 leaves it to `banking webhooks run`.
    events_dispatch_interval_s: float = Field(default=0.25, ge=0, le=60)
    # Allow webhook URLs over plain http and to private, loopback or link-local
    # addresses (development and tests only).
    webhook_allow_private: bool = False
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # First retry delay; each further retry doubles it (with jitter), up to 6 hours.
    webhook_retry_base_s: float = Field(default=30.0, gt=0, le=3600)
    # A delivery failing for this long is given up and its endpoint disabled.
    webhook_give_up_after_s: int = Field(default=3 * 24 * 3600, ge=1)
    # How long the previous secret stays valid after `rotate-secret` (both signatures sent).
    webhook_secret_grace_s: int = Field(default=24 * 3600, ge=0, le=7 * 24 * 3600)

    # Payees (see payees/): for this long after a payee is added, transfers to it above
    # the limit are declined with `new_payee_limit`; either at 0 turns the control off.
    new_payee_cooldown_s: int = Field(default=24 * 3600, ge=0)
    new_payee_limit_minor: int = Field(default=100_000, ge=0, le=10**15)

    # Scheduled and standing transfers (see schedules/): how often each API process
    # looks for due occurrences (0: no in-process scheduler; run `banking schedules
    # run-due` from cron instead), and how a declined occurrence is retried.
    scheduler_interval_s: float = Field(default=5.0, ge=0)
    schedule_retries: int = Field(default=3, ge=0, le=100)
    schedule_retry_interval_s: int = Field(default=3600, ge=1)

    # Statements (see statements/) cut calendar months, and schedules count days and
    # months, in this IANA time zone.
    bank_timezone: str = "UTC"
    bank_name: str = Field(default="Banking", min_length=1, max_length=60)
    # Printed on statements: the bank's postal address (commas start new lines) and contact.
    bank_address: str = Field(default="1 Harbour Street, Springfield, US", max_length=200)
    bank_contact: str = Field(default="support@example.com · +1 555 0100 · 24/7", max_length=120)

    # Rate limits (see core/ratelimit.py), in the `limits` library's notation.
    rate_limits_enabled: bool = True
    rate_limit_signup: str = "10/minute"
    rate_limit_login: str = "10/minute"
    rate_limit_refresh: str = "30/minute"
    rate_limit_money: str = "120/minute"
    rate_limit_lookup: str = "30/minute"
    rate_limit_network: str = "6000/minute"
    # Namespace of the counters in Redis, so several deployments can share one server.
    rate_limit_key_prefix: str = Field(default="banking", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")

    @field_validator(
        "cors_origins", "card_encryption_previous_keys", "audit_previous_keys", mode="before"
    )
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("log_format", "redis_url", "sentry_dsn", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "rate_limit_signup",
        "rate_limit_login",
        "rate_limit_refresh",
        "rate_limit_money",
        "rate_limit_lookup",
        "rate_limit_network",
    )
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '10/minute': {value!r}") from exc
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        from banking.core.clientaddr import parse_proxies

        parse_proxies(value)
        return value

    @field_validator("bank_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"not an IANA time zone like 'Europe/Paris': {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Accept the URLs people paste (postgres://, postgresql://, sqlite://) and pick
        # the async driver the service runs on.
        for prefix, replacement in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(prefix):
                value = replacement + value[len(prefix) :]
                break
        return _hosts_as_query(value)

    @field_validator("database_read_url", mode="before")
    @classmethod
    def _read_url(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            return None
        if value.startswith(("sqlite", "postgres://", "postgresql://")):
            value = cls._async_driver(value.strip())
        return _hosts_as_query(value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_prod(self) -> bool:
        return self.app_env is AppEnv.prod

    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return LogFormat.console if self.app_env is AppEnv.dev else LogFormat.json

    def check_production(self) -> None:
        """Refuse weak or missing secrets in production."""
        if not self.is_prod:
            return
        problems = []
        for name in SECRET_NAMES:
            value: str = getattr(self, name)
            if value.strip().lower() in KNOWN_DEFAULTS:
                problems.append(f"{name.upper()} is missing or a known default")
            elif len(value.encode()) < MIN_SECRET_BYTES:
                problems.append(f"{name.upper()} is shorter than {MIN_SECRET_BYTES} bytes")
        if "*" in (entry.strip() for entry in self.trusted_proxies.split(",")):
            problems.append(
                "TRUSTED_PROXIES is '*' (any client could pick its own address); "
                "list the proxies' addresses or CIDR networks"
            )
        if problems:
            raise ConfigError(
                "refusing to start in production: " + "; ".join(problems) + ". "
                "Generate secrets with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )

    def fill_dev_secrets(self, directory: Path = VAR_DIR) -> None:
        """Outside production, generate missing secrets once and keep them in `directory`."""
        if self.is_prod:
            return
        for name in SECRET_NAMES:
            if getattr(self, name):
                continue
            object.__setattr__(self, name, read_or_create_secret(directory / f"{name}.secret"))


# How long a process waits for another one that created a secret file to finish writing it.
SECRET_WRITE_WAIT_S = 5.0


def read_or_create_secret(path: Path) -> str:
    """The secret kept in `path`, generated and written there first if the file is absent.

    The file is created with O_CREAT | O_EXCL and mode 0600 in one system call, so it is
    never readable by others and only one process writes it; a process that finds it
    already created reads the value the creator wrote (waiting for the write to land).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # A file left by an older version may be more open than 0600: close it first.
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return _read_secret(path)
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")
        file.flush()
        os.fsync(file.fileno())
    return value


def _read_secret(path: Path) -> str:
    deadline = time.monotonic() + SECRET_WRITE_WAIT_S
    while True:
        text = path.read_text()
        # The creator writes one line ending in a newline; until it has, wait for it (a
        # file written by hand without the newline is taken as it is after the wait).
        if text.endswith("\n") and text.strip():
            return text.strip()
        if time.monotonic() >= deadline:
            if text.strip():
                return text.strip()
            raise ConfigError(f"{path} is empty: delete it to generate a new secret")
        time.sleep(0.01)


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.check_production()
    settings.fill_dev_secrets()
    return settings
