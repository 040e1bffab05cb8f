"""Private PostgreSQL 15 clusters for the high-availability tests.

Each node is initdb'd into a temporary folder, listens on 127.0.0.1 on a port of its own
and its socket lives in its data folder: the machine's own cluster is never touched.
PostgreSQL refuses to run as root, so when the tests run as root every PostgreSQL binary
runs as the `postgres` OS user (`runuser`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.server import free_port

PG_BIN = Path(os.environ.get("HA_PG_BIN", "/usr/lib/postgresql/15/bin"))
REQUIRED = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
OS_USER = "postgres"


def require_postgres_binaries() -> None:
    """Skip (fail in CI, where CI=true) when the cluster cannot be built here."""
    missing = [name for name in REQUIRED if not (PG_BIN / name).exists()]
    reason = ""
    if missing:
        reason = f"PostgreSQL 15 binaries not found in {PG_BIN} (missing {', '.join(missing)})"
    elif os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            reason = f"running as root and there is no {OS_USER!r} OS user to run PostgreSQL"
        if shutil.which("runuser") is None:
            reason = "running as root and `runuser` is missing"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"tests/ha cannot run in CI: {reason}")
        pytest.skip(reason)


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], *, timeout_s: float = 60) -> str:
    done = subprocess.run(
        _as_owner(command), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def make_root() -> Path:
    """A temporary folder the PostgreSQL OS user owns."""
    root = Path(tempfile.mkdtemp(prefix="banking-ha-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        owner = pwd.getpwnam(OS_USER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    return root


BASE_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "wal_level": "replica",
    "max_wal_senders": "5",
    "hot_standby": "on",
    "fsync": "on",
    "synchronous_commit": "on",
    "wal_sender_timeout": "5s",
    "wal_receiver_timeout": "5s",
    "logging_collector": "off",
}


class Node:
    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.data = root / name
        self.log = root / f"{name}.log"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _append_settings(self, settings: dict[str, str]) -> None:
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(lines)

    def _touch_log(self) -> None:
        self.log.touch()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(OS_USER)
            os.chown(self.log, owner.pw_uid, owner.pw_gid)

    def init_primary(self, **settings: str) -> Node:
        _run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--no-instructions"]
        )  # fmt: skip
        self._append_settings(
            {
                **BASE_SETTINGS,
                "port": str(self.port),
                "unix_socket_directories": f"'{self.data}'",
                "cluster_name": f"'{self.name}'",
                **settings,
            }
        )
        return self

    def init_standby_of(self, primary: Node) -> Node:
        """A streaming standby of `primary` (pg_basebackup, standby.signal)."""
        _run(
            [str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
             "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast"]
        )  # fmt: skip
        # The copy carries the primary's synchronous_standby_names: once promoted, this
        # node would wait for a standby of its own name. Its future standby is named by
        # whoever promotes it (as a failover manager does).
        auto_conf = self.data / "postgresql.auto.conf"
        kept = [
            line
            for line in auto_conf.read_text().splitlines(keepends=True)
            if not line.startswith("synchronous_standby_names")
        ]
        auto_conf.write_text("".join(kept))
        # Its own port and socket; `cluster_name` is the name the primary's
        # synchronous_standby_names refers to (the walreceiver's application_name).
        self._append_settings(
            {
                "port": str(self.port),
                "unix_socket_directories": f"'{self.data}'",
                "cluster_name": f"'{self.name}'",
            }
        )
        return self

    def start(self, *, timeout_s: float = 30) -> None:
        self._touch_log()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                _run(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                     "-w", "-t", "20", "start"]
                )  # fmt: skip
                return
            except RuntimeError:
                # After a SIGKILL of the postmaster its backends take a moment to notice
                # and exit; until then the shared memory is in use and start refuses.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        """What a crash does: SIGKILL to the postmaster, no shutdown."""
        os.kill(self.postmaster_pid(), signal.SIGKILL)

    def crash(self) -> None:
        """What losing the machine does: SIGKILL to the postmaster and every process it
        started (the WAL senders included), so nothing more leaves it."""
        postmaster = self.postmaster_pid()
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    children.append(int(entry.name))
        for pid in (*children, postmaster):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def promote(self) -> None:
        _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "promote"])

    def psql_value(self, sql: str, database: str = "postgres") -> str:
        psql = PG_BIN / "psql"
        command = [str(psql if psql.exists() else "psql"), "-h", "127.0.0.1",
                   "-p", str(self.port), "-U", "postgres", "-d", database, "-Atc", sql]  # fmt: skip
        return _run(command).strip()

    def stop(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        except (RuntimeError, subprocess.TimeoutExpired):
            with contextlib.suppress(OSError, ValueError):
                os.kill(self.postmaster_pid(), signal.SIGKILL)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def wait_until(predicate: object, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if callable(predicate) and predicate():
                return
        except RuntimeError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class Cluster:
    def __init__(self, root: Path) -> None:
        self.primary = Node(root, "node1")
        self.standby = Node(root, "node2")

    def build(self, *, synchronous: bool = True) -> Cluster:
        primary, standby = self.primary, self.standby
        primary.init_primary()
        primary.start()
        primary.psql_value("CREATE DATABASE bank")
        standby.init_standby_of(primary)
        standby.start()
        if synchronous:
            self._make_synchronous()
        else:
            wait_until(
                lambda: primary.psql_value("SELECT count(*) FROM pg_stat_replication") == "1",
                timeout_s=30,
                what="the standby to stream",
            )
        return self

    def rejoin(self) -> None:
        """After a failover: the promoted standby is the primary; the dead former primary
        comes back as its synchronous standby (what Patroni does with pg_rewind; here a
        fresh pg_basebackup), on the same port, so the same URL keeps working."""
        dead, promoted = self.primary, self.standby
        dead.stop()
        shutil.rmtree(dead.data, ignore_errors=True)
        self.primary, self.standby = promoted, dead
        dead.init_standby_of(promoted)
        dead.start()
        self._make_synchronous()

    def _make_synchronous(self) -> None:
        primary, standby = self.primary, self.standby
        primary.psql_value(f"ALTER SYSTEM SET synchronous_standby_names = '{standby.name}'")
        primary.psql_value("SELECT pg_reload_conf()")
        wait_until(
            lambda: (
                primary.psql_value(
                    "SELECT sync_state FROM pg_stat_replication "
                    f"WHERE application_name = '{standby.name}'"
                )
                == "sync"
            ),
            timeout_s=30,
            what="the standby to be synchronous",
        )

    def url(self) -> str:
        # Fixed order (node1, node2): the roles swap, the URL stays.
        nodes = sorted((self.primary, self.standby), key=lambda node: node.name)
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in nodes)
        return f"postgresql://postgres@{hosts}/bank?target_session_attrs=read-write"

    def stop(self) -> None:
        for node in (self.primary, self.standby):
            node.stop()
