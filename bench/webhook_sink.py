"""A minimal webhook receiver for `make bench`: answers every POST with 200 (keep-alive).

Reads HTTP/1.1 requests with asyncio streams (little CPU, so it disturbs the measurement
little), counts them, and on SIGTERM prints {"received": N, "event_ids": distinct} as JSON.
Usage: python bench/webhook_sink.py PORT
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def main(port: int) -> None:
    received = 0
    event_ids: set[bytes] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    lowered = name.strip().lower()
                    if lowered == b"content-length":
                        length = int(value)
                    elif lowered == b"banking-event-id":
                        event_ids.add(value.strip())
                await reader.readexactly(length)
                received += 1
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            # The peer went, or the sink is stopping.
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    print(json.dumps({"received": received, "event_ids": len(event_ids)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
