"""Development secrets: created private from the first byte, and one value per file even
when several processes start at once."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from banking.core import config
from banking.core.config import SECRET_NAMES, Settings

WORKERS = 8


def _dev_settings() -> Settings:
    values: dict[str, Any] = {"app_env": "dev", **dict.fromkeys(SECRET_NAMES, "")}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_secret_files_are_private_without_a_later_chmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A permissive umask and no chmod at all: the mode must come from the creation itself,
    # so there is no moment at which another user could open the file.
    monkeypatch.setattr(Path, "chmod", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(os, "chmod", lambda *_args, **_kwargs: None)
    previous = os.umask(0o022)
    try:
        settings = _dev_settings()
        settings.fill_dev_secrets(tmp_path)
    finally:
        os.umask(previous)
    for name in SECRET_NAMES:
        path = tmp_path / f"{name}.secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert path.read_text() == getattr(settings, name) + "\n"
        assert len(getattr(settings, name)) >= 32


def test_an_existing_file_is_read_not_replaced(tmp_path: Path) -> None:
    first = _dev_settings()
    first.fill_dev_secrets(tmp_path)
    second = _dev_settings()
    second.fill_dev_secrets(tmp_path)
    assert [getattr(first, name) for name in SECRET_NAMES] == [
        getattr(second, name) for name in SECRET_NAMES
    ]


def test_an_older_world_readable_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "audit_key.secret"
    path.write_text("an-older-secret-0123456789abcdef0123456789\n")
    path.chmod(0o644)
    assert config.read_or_create_secret(path) == "an-older-secret-0123456789abcdef0123456789"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_file_still_being_written_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "jwt_secret.secret"
    path.touch(mode=0o600)
    written = multiprocessing.get_context("spawn").Process(
        target=_write_later, args=(str(path), "written-by-the-creator")
    )
    written.start()
    try:
        assert config.read_or_create_secret(path) == "written-by-the-creator"
    finally:
        written.join(10)


def _write_later(path: str, value: str) -> None:
    import time

    time.sleep(0.3)
    with open(path, "a") as file:
        file.write(value + "\n")


def _start_worker(directory: str, barrier: Any, results: Any) -> None:
    import secrets
    import time

    # A slow source of randomness widens any gap between "is there a file?" and writing
    # one, which is where workers starting together used to each write their own secret.
    generate = secrets.token_urlsafe

    def slow_token(size: int) -> str:
        time.sleep(0.05)
        return generate(size)

    secrets.token_urlsafe = slow_token
    settings = _dev_settings()
    barrier.wait()
    settings.fill_dev_secrets(Path(directory))
    results.put(tuple(getattr(settings, name) for name in SECRET_NAMES))


def test_workers_starting_at_once_share_one_secret(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    workers = [
        context.Process(target=_start_worker, args=(str(tmp_path), barrier, results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    seen = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0
    assert len(set(seen)) == 1, "workers started with different secrets"
    on_disk = tuple((tmp_path / f"{name}.secret").read_text().strip() for name in SECRET_NAMES)
    assert seen[0] == on_disk
