"""A fast HTTP sink for the benchmark, in its own process: answers every request 200 with an
empty body, after an optional fixed latency, so that the client side is what gets measured.

    python bench/fast_sink.py PORT [LATENCY_SECONDS]

asyncio streams and a hand-rolled HTTP/1.1 keep-alive loop: the emulator (http.server, one
thread per connection) would be the bottleneck, and with it the ratio would measure the
emulator, not target-pendo. `GET /_count` answers the number of requests served so far.
"""

from __future__ import annotations

import asyncio
import sys

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"


async def main(port: int, latency: float) -> None:
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /_count"):
                    body = str(served).encode()
                    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                    writer.write(head + body)
                else:
                    served += 1
                    if latency:
                        await asyncio.sleep(latency)
                    writer.write(_OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=256)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
