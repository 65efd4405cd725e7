"""The shared test helpers (tests/hdtest) against real sockets and processes: waits fail with
what was awaited and the last value, held ports refuse and stay ours, start_server proves the
listener is its server's and starts again when another process took the number."""

import asyncio
import socket
import sys
import time

import pytest

from hdtest import Proc, async_wait_until, listening, port_of, start_server, wait_until


def test_wait_until_returns_the_value_and_is_bounded():
    seen = iter(range(100))
    assert wait_until(lambda: next(seen) >= 3 and "three", 5, 0.01, "three") == "three"
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"^timed out after 0.3 s waiting for the answer; last value seen: \[\]$"):
        wait_until(lambda: [], 0.3, 0.05, "the answer")
    assert 0.3 <= time.monotonic() - t0 < 1.0


def test_wait_until_reports_the_last_value_and_ignored_errors():
    values = iter([0, [], ""])
    with pytest.raises(AssertionError, match=r"waiting for a non-empty value; last value seen: ''"):
        wait_until(lambda: next(values, ""), 0.2, 0.05, "a non-empty value")

    def refused():
        raise ConnectionRefusedError(111, "refused")
    with pytest.raises(AssertionError, match=r"last value seen: ConnectionRefusedError"):
        wait_until(refused, 0.2, 0.05, "a connection", ignore=(OSError,))
    with pytest.raises(ConnectionRefusedError):  # not ignored: raised at once
        wait_until(refused, 5, 0.05, "a connection")


async def test_async_wait_until_lets_the_loop_run():
    done = []
    asyncio.get_running_loop().call_later(0.1, done.append, "x")
    assert await async_wait_until(lambda: done, 5, 0.01, "the callback") == ["x"]

    async def never():
        return 0
    with pytest.raises(AssertionError, match="waiting for never; last value seen: 0"):
        await async_wait_until(never, 0.2, 0.05)


def test_closed_ports_refuse_and_cannot_be_taken(held_ports):
    tcp, udp = held_ports.closed_tcp(), held_ports.closed_udp()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", tcp), timeout=2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(2)
        c.connect(("127.0.0.1", udp))
        c.send(b"ping")
        with pytest.raises(ConnectionRefusedError):  # ICMP port unreachable, reported on the next call
            c.recv(10)
    for kind, port in ((socket.SOCK_STREAM, tcp), (socket.SOCK_DGRAM, udp)):
        with socket.socket(socket.AF_INET, kind) as other, pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", port))


async def test_reserved_port_serves_stops_and_serves_again(held_ports):
    held = held_ports.reserve()

    async def hello(reader, writer):
        writer.write(b"hi")
        await writer.drain()
        writer.close()

    for _ in range(2):
        server = await asyncio.start_server(hello, sock=held.listen())
        reader, writer = await asyncio.open_connection("127.0.0.1", held.port)
        assert await reader.read() == b"hi"
        writer.close()
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", held.port)
        with socket.socket() as other, pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", held.port))  # a program without SO_REUSEPORT cannot take it


def test_start_server_retries_when_another_process_took_the_port(tmp_path):
    squatter = None
    started = []

    def http(port):
        nonlocal squatter
        if squatter is None:  # the fault: between the pick and the server's bind somebody listens there
            squatter = socket.socket()
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
        p = Proc([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path), str(port)])
        started.append((port, p))
        return p

    proc, (port,) = start_server(http, ("tcp",), timeout=10)
    try:
        taken, first = started[0]
        assert len(started) == 2 and port != taken
        assert first.p.poll() not in (None, 0)  # the fault took effect: the first server could not bind
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert c.recv(100).startswith(b"HTTP/1.0 200")
    finally:
        proc.stop()
        squatter.close()


def test_start_server_fails_clearly_when_the_server_cannot_start():
    with pytest.raises(RuntimeError, match=r"did not come up on 127.0.0.1 \[\d+\]: exited with 3"):
        start_server(lambda port: Proc([sys.executable, "-c", "raise SystemExit(3)"]), ("tcp",), timeout=5)


def test_listening_socket_is_served_as_given():
    s = listening()
    assert s.getsockname()[0] == "127.0.0.1" and port_of(s) > 0
    s.close()
