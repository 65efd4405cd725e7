"""A small, fast HTTP load client for lab tests: N GET requests, C at a time, by default a new TCP
connection per request; counts answers by the server's identity (first body line).

    python -m hadirector.lab.httpload --host 198.18.0.100 --port 80 -n 2000 -c 20 [--keepalive]
           [--udp] [--timeout 3] [--deadline 60] [--source IP]

Prints one JSON object: {"counts": {identity: n}, "ok": n, "errors": n, "error_kinds": {...},
"flows": n, "elapsed": seconds}. "flows" is the number of distinct local (address, port) pairs the
connections (or UDP sockets) used: the kernel may give a new connection the source port of an
earlier, closed one, and a balancer that still remembers that flow sees no new connection. Bounded in count (-n) and time (--deadline). Also importable: `run_load()`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter


async def _one_request(host: str, port: int, path: str, timeout: float, source: str | None,
                       keep: bool, conn: tuple | None = None,
                       flows: set | None = None) -> tuple[str, tuple | None]:
    """One GET; returns (identity, reusable connection or None). A new connection's local
    address goes into `flows`."""
    if conn is None:
        kw = {"local_addr": (source, 0)} if source else {}
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, **kw), timeout)
        if flows is not None:
            flows.add(writer.get_extra_info("sockname")[:2])
    else:
        reader, writer = conn
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
           f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
    try:
        writer.write(req)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
        status = head.split(b"\r\n", 1)[0]
        if not status.startswith(b"HTTP/1.") or b" 200 " not in status + b" ":
            raise ValueError(f"bad status {status[:40]!r}")
    except BaseException:
        writer.close()
        raise
    ident = body.decode(errors="replace").split("\n", 1)[0]
    if keep:
        return ident, (reader, writer)
    writer.close()
    return ident, None


async def _udp_request(host: str, port: int, timeout: float, source: str | None,
                       flows: set | None = None) -> str:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):  # type: ignore[override]
            if not fut.done():
                fut.set_result(data)

        def error_received(self, exc):  # type: ignore[override]
            if not fut.done():
                fut.set_exception(exc)

    kw = {"local_addr": (source, 0)} if source else {}
    transport, _ = await loop.create_datagram_endpoint(P, remote_addr=(host, port), **kw)
    if flows is not None:
        flows.add(transport.get_extra_info("sockname")[:2])
    try:
        transport.sendto(b"ping")
        data = await asyncio.wait_for(fut, timeout)
    finally:
        transport.close()
    return data.decode(errors="replace").split(" ", 1)[0]


async def run_load(host: str, port: int, requests: int = 1000, concurrency: int = 10,
                   keepalive: bool = False, udp: bool = False, path: str = "/",
                   timeout: float = 3.0, deadline: float = 60.0, source: str | None = None) -> dict:
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    flows: set[tuple] = set()
    started = time.monotonic()
    end = started + deadline
    remaining = [requests]

    async def worker() -> None:
        conn = None
        while remaining[0] > 0 and time.monotonic() < end:
            remaining[0] -= 1
            try:
                if udp:
                    ident = await _udp_request(host, port, timeout, source, flows)
                else:
                    ident, conn = await _one_request(host, port, path, timeout, source, keepalive, conn, flows)
                counts[ident] += 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                errors[type(exc).__name__] += 1
                conn = None
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, requests)))))
    return {"counts": dict(counts), "ok": sum(counts.values()), "errors": sum(errors.values()),
            "error_kinds": dict(errors), "flows": len(flows), "elapsed": round(time.monotonic() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hadirector.lab.httpload")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("-n", "--requests", type=int, default=1000)
    p.add_argument("-c", "--concurrency", type=int, default=10)
    p.add_argument("--keepalive", action="store_true")
    p.add_argument("--udp", action="store_true")
    p.add_argument("--path", default="/")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--deadline", type=float, default=60.0)
    p.add_argument("--source", default=None)
    a = p.parse_args(argv)
    try:
        import uvloop  # type: ignore
        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run_load(a.host, a.port, a.requests, a.concurrency, a.keepalive, a.udp,
                                  a.path, a.timeout, a.deadline, a.source))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
