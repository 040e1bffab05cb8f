"""Idle keep-alive connections: the server is never the side that closes first.

httpx (and most HTTP clients) drop a pooled connection after 5 s idle, load balancers after
60 s or so. A server that closes an idle connection at the same moment a client sends a
request on it makes that request fail with a reset: under load, after a pause of a few
seconds, `tests/reliability/test_money_under_load.py` saw exactly that (`httpx.ReadError`).
So the server keeps idle connections for `HTTP_KEEP_ALIVE_S` (75 s by default).
"""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path

import pytest

from tests.server import Server

pytestmark = pytest.mark.slow

# Past the idle timeout of httpx's pool (and of uvicorn's own default, 5 s).
CLIENT_IDLE_S = 6.0


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    sock = conn.sock
    assert sock is not None, "the connection was not kept open after the first answer"
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False  # nothing to read and no FIN: still open
    finally:
        sock.settimeout(timeout)


def _get_live(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/v1/health/live")
    response = conn.getresponse()
    response.read()
    return response.status


def test_an_idle_connection_outlives_the_clients_own_idle_timeout(
    database_url: str, tmp_path: Path
) -> None:
    with Server(database_url, log_path=tmp_path / "server.log") as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            assert _get_live(conn) == 200
            time.sleep(CLIENT_IDLE_S)
            assert not _closed_by_peer(conn), "the server closed an idle connection first"
            assert _get_live(conn) == 200  # the same connection serves the next request
        finally:
            conn.close()


def test_the_server_closes_a_connection_idle_longer_than_the_setting(
    database_url: str, tmp_path: Path
) -> None:
    with Server(database_url, log_path=tmp_path / "server.log", HTTP_KEEP_ALIVE_S="1") as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            assert _get_live(conn) == 200
            deadline = time.monotonic() + 10
            while not _closed_by_peer(conn):
                assert time.monotonic() < deadline, "HTTP_KEEP_ALIVE_S=1 never closed it"
                time.sleep(0.2)
        finally:
            conn.close()
