"""A real HTTP receiver for webhook tests, on 127.0.0.1 (a free port), in a thread."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    """Records every POST; answers 500 to the first `fail_first` of them, then 200."""

    def __init__(self, *, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[Received] = []
        self.failed = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: without this, Nagle and delayed ACKs
            # hold every answer back about 40 ms.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (a SIGKILL test): nothing was delivered,
                    # as a real receiver would see it; the sender retries the event.
                    self.close_connection = True
                    return
                with receiver._lock:
                    failing = receiver.failed < receiver.fail_first
                    if failing:
                        receiver.failed += 1
                    else:
                        receiver.requests.append(Received(dict(self.headers.items()), body))
                answer = b'{"error":"try later"}' if failing else b"ok"
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [received.event for received in self.requests]

    def wait_for(self, count: int, *, timeout_s: float = 30.0) -> list[Received]:
        """Until at least `count` requests were accepted (a guard against a hang)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self._lock:
            raise AssertionError(f"{len(self.requests)} of {count} webhooks arrived")

    async def wait_async(self, count: int, *, timeout_s: float = 30.0) -> list[Received]:
        """`wait_for` for a test whose event loop also runs the dispatcher."""
        import asyncio

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            await asyncio.sleep(0.02)
        with self._lock:
            raise AssertionError(f"{len(self.requests)} of {count} webhooks arrived")
