"""The benchmarks' latency proxy (scripts/benchsuite/latency_proxy.py) against an echo server on 127.0.0.1: bytes
forwarded exactly, each round trip delayed by the RTT asked for, and pipelined requests paying it once."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from benchsuite.latency_proxy import LatencyProxy  # noqa: E402


@pytest.fixture
def echo_server():
    """Echoes every byte back until the client closes; stops with the test."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    thread.join(5)
    listener.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "connection closed early"
        out += chunk
    return bytes(out)


def round_trip(sock: socket.socket, payload: bytes) -> float:
    started = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - started


def test_bytes_pass_unchanged_both_ways(echo_server):
    payload = os.urandom(3 * 1024 * 1024)
    with LatencyProxy(echo_server, rtt_ms=0) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as s:
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        got = recv_exactly(s, len(payload))
        sender.join()
        assert got == payload
    assert proxy.connections == 1 and proxy.bytes_up == proxy.bytes_down == len(payload)


@pytest.mark.parametrize("rtt_ms", [20.0, 60.0])
def test_each_round_trip_waits_the_rtt(echo_server, rtt_ms):
    with LatencyProxy(echo_server, rtt_ms=rtt_ms) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = sorted(round_trip(s, b"x" * 100) for _ in range(10))
    median = times[len(times) // 2]
    assert times[0] >= rtt_ms / 1000 * 0.95, times
    assert median < rtt_ms / 1000 + 0.03, times


def test_pipelined_requests_pay_the_delay_once(echo_server):
    rtt_ms, requests = 50.0, 40
    with LatencyProxy(echo_server, rtt_ms=rtt_ms) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        for i in range(requests):  # one after another without waiting for the answers
            s.sendall(i.to_bytes(4, "big") * 25)
            time.sleep(0.001)
        got = recv_exactly(s, requests * 100)
        took = time.perf_counter() - started
    assert got == b"".join(i.to_bytes(4, "big") * 25 for i in range(requests))  # in order
    # Waiting for each answer would take 40 x 50 ms = 2 s; pipelined, one RTT plus the sending.
    assert rtt_ms / 1000 <= took < rtt_ms / 1000 * 4, took


def test_a_refused_upstream_closes_the_client(echo_server):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()  # bound, never listening: connections are refused
        with LatencyProxy(dead, rtt_ms=1) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as s:
            s.settimeout(5)
            assert s.recv(10) == b""


def test_negative_rtt_is_refused():
    with pytest.raises(ValueError):
        LatencyProxy(("127.0.0.1", 1), rtt_ms=-1)
