"""The tests' webhook receiver counts only requests that arrived whole.

A sender killed mid-request (the SIGKILL delivery test) leaves a request whose body is
cut short; a real receiver never sees it as delivered, so neither does ours.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx

from tests.support.webhook_receiver import Receiver


def test_a_request_cut_short_is_not_recorded_and_a_whole_one_is() -> None:
    with Receiver() as receiver:
        address = urlsplit(receiver.url)
        with socket.create_connection((address.hostname, address.port)) as cut:
            cut.sendall(
                b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n"
            )
            cut.shutdown(socket.SHUT_WR)  # the sender dies after the headers
            cut.settimeout(10)
            assert cut.recv(100) == b""  # closed without an answer
        whole = httpx.post(receiver.url, json={"id": "evt_1", "type": "transfer.posted"})
        assert whole.status_code == 200
        assert receiver.events() == [{"id": "evt_1", "type": "transfer.posted"}]
