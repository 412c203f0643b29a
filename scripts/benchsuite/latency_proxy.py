"""A TCP proxy on 127.0.0.1 that adds a round-trip delay, for benchmarks with a network between the consumer and
PostgreSQL (no kernel support needed: no netem, no namespaces).

Each byte is forwarded half the round-trip time after it arrived, in each direction, in order. Bytes are never held
back by earlier delays: a chunk waits only for its own deadline, so a client that pipelines (sends the next
statement before the answer to the previous one) pays the delay once, as on a real network, and one that waits for
each answer pays it every time. Bandwidth is not limited.

    with LatencyProxy(("127.0.0.1", pg.port), rtt_ms=1.0) as proxy:
        run_consumer(postgres_port=proxy.port)

Also a command: ``python3 latency_proxy.py --upstream 127.0.0.1:5432 --rtt-ms 5`` prints the port it listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import sys
import threading
import time

CHUNK = 256 * 1024


class _DelayedPipe:
    """One direction of one connection: reads, stamps each chunk with its due time, writes it when due."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float):
        self.reader, self.writer, self.delay_s = reader, writer, delay_s
        self.queue: collections.deque = collections.deque()
        self.ready = asyncio.Event()
        self.bytes = 0

    async def read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await self.reader.read(CHUNK):
                self.queue.append((loop.time() + self.delay_s, data))
                self.ready.set()
        except (ConnectionError, OSError):
            pass
        self.queue.append((loop.time() + self.delay_s, b""))  # end of stream, after the data before it
        self.ready.set()

    async def write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not self.queue:
                    self.ready.clear()
                    await self.ready.wait()
                due, data = self.queue[0]
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                # Everything already due goes out in one write.
                out = []
                now = loop.time()
                while self.queue and self.queue[0][0] <= now and self.queue[0][1]:
                    out.append(self.queue.popleft()[1])
                if out:
                    payload = b"".join(out)
                    self.bytes += len(payload)
                    self.writer.write(payload)
                    await self.writer.drain()
                elif self.queue and not self.queue[0][1] and self.queue[0][0] <= now:
                    self.queue.popleft()
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
        except (ConnectionError, OSError):
            return


class LatencyProxy:
    """Listens on 127.0.0.1 (a free port unless given) and forwards to `upstream` with `rtt_ms` of round trip."""

    def __init__(self, upstream: tuple[str, int], rtt_ms: float, port: int = 0):
        if rtt_ms < 0:
            raise ValueError("rtt_ms must be >= 0")
        self.upstream = upstream
        self.rtt_ms = rtt_ms
        self.port = port
        self.connections = 0
        self._pipes: list[tuple[_DelayedPipe, _DelayedPipe]] = []  # (up, down) of every connection so far
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._tasks: set = set()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        for w in (client_w, server_w):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        one_way = self.rtt_ms / 2000.0
        up = _DelayedPipe(client_r, server_w, one_way)
        down = _DelayedPipe(server_r, client_w, one_way)
        self._pipes.append((up, down))
        try:
            await asyncio.gather(up.read_loop(), up.write_loop(), down.read_loop(), down.write_loop())
        finally:
            for w in (client_w, server_w):
                w.close()

    @property
    def bytes_up(self) -> int:
        """Bytes forwarded so far from clients to the upstream server (counted as they are written)."""
        return sum(up.bytes for up, _ in self._pipes)

    @property
    def bytes_down(self) -> int:
        """Bytes forwarded so far from the upstream server to clients."""
        return sum(down.bytes for _, down in self._pipes)

    def _spawn(self, r, w) -> None:
        task = asyncio.ensure_future(self._handle(r, w))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._spawn, "127.0.0.1", self.port))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        self._server.close()
        loop.run_until_complete(self._server.wait_closed())
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
        loop.close()

    def start(self) -> "LatencyProxy":
        self._thread = threading.Thread(target=self._run, name=f"latency-proxy-{self.rtt_ms}ms", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="host:port to forward to")
    parser.add_argument("--rtt-ms", type=float, default=1.0, help="round-trip delay to add (ms)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    with LatencyProxy((host, int(port)), args.rtt_ms, args.port) as proxy:
        print(proxy.port, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
