"""`banking serve` prepares prometheus-client's multiprocess directory for several workers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from banking.cli.server import MULTIPROC_ENV, metrics_directory


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    return tmp_path


class TestMetricsDirectory:
    def test_one_worker_needs_no_directory(self, private_tempdir: Path) -> None:
        with metrics_directory(workers=1) as directory:
            assert directory is None
            assert MULTIPROC_ENV not in os.environ
        assert list(private_tempdir.iterdir()) == []

    def test_several_workers_get_a_fresh_directory_removed_on_exit(
        self, private_tempdir: Path
    ) -> None:
        with metrics_directory(workers=2) as directory:
            assert directory is not None
            assert os.environ[MULTIPROC_ENV] == directory
            assert Path(directory).parent == private_tempdir
            Path(directory, "counter_1.db").write_bytes(b"x")
        assert not Path(directory).exists()
        assert MULTIPROC_ENV not in os.environ

    def test_the_directory_is_removed_even_when_the_server_fails(self) -> None:
        with pytest.raises(RuntimeError), metrics_directory(workers=3) as directory:
            raise RuntimeError("boom")
        assert directory is not None
        assert not Path(directory).exists()

    def test_an_operator_setting_is_kept_and_not_deleted(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        own = tmp_path / "metrics"
        own.mkdir()
        monkeypatch.setenv(MULTIPROC_ENV, str(own))
        with metrics_directory(workers=4) as directory:
            assert directory == str(own)
        assert own.is_dir()
        assert os.environ[MULTIPROC_ENV] == str(own)
