"""A tiny HTTP server for lab reals: every GET/HEAD answers 200 with the server's identity as the
body (and an `X-Real` header), HTTP/1.1 keep-alive or HTTP/1.0 close, quiet. Paths:

  /            the identity and a newline
  /peer        the identity, then the client address and port as the server saw them
  /sleep/<ms>  the identity after a delay (at most 60 s)
  /stream/<bytes>/<ms>  `bytes` bytes of stream_block() data spread evenly over `ms` milliseconds
               (at most 1 GiB, 10 min), Content-Length set, the identity in `X-Real`: a long
               download whose checksum the client can recompute (lab/survive.py)

    python -m hadirector.lab.httpd --port 80 --identity real1 [--bind 0.0.0.0] [--udp-echo PORT]

`--udp-echo` also answers each UDP datagram with `<identity> <datagram>` (for UDP services).
Also writes nginx configurations that answer the same way (write_nginx_conf) for benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal

MAX_HEADER = 16384
STREAM_CHUNK = 16384
MAX_STREAM_BYTES = 1 << 30
MAX_STREAM_MS = 600_000


def stream_block(offset: int, size: int) -> bytes:
    """The bytes [offset, offset+size) of the /stream data: 64 KiB block k is
    random.Random(k).randbytes(65536) (deterministic, fast, not periodic), so the client can
    recompute the checksum of what it should have received."""
    out = bytearray()
    k, skip = divmod(offset, 65536)
    while len(out) < size:
        out += random.Random(k).randbytes(65536)[skip:skip + size - len(out)]
        k, skip = k + 1, 0
    return bytes(out)


async def _stream(writer: asyncio.StreamWriter, version: str, identity: str, path: str) -> None:
    try:
        _, _, nbytes, ms = path.split("/")
        total, span = min(int(nbytes), MAX_STREAM_BYTES), min(int(ms), MAX_STREAM_MS)
    except ValueError:
        writer.write(f"{version} 400 Bad Request\r\nContent-Length: 0\r\n\r\n".encode())
        return
    writer.write((f"{version} 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: {total}\r\nX-Real: {identity}\r\nConnection: close\r\n\r\n").encode())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sent = 0
    while sent < total:
        n = min(STREAM_CHUNK, total - sent)
        writer.write(stream_block(sent, n))
        sent += n
        await writer.drain()
        due = t0 + span / 1000 * sent / total  # pace: byte `sent` is due at this instant
        if due > loop.time():
            await asyncio.sleep(due - loop.time())


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, identity: str) -> None:
    peer = writer.get_extra_info("peername") or ("?", 0)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                writer.write(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            method, path, version = parts
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k:
                    headers[k.strip().lower()] = v.strip()
            clen = int(headers.get("content-length", "0") or 0)
            if clen:
                await reader.readexactly(min(clen, 1 << 20))
            if path.startswith("/stream/") and method == "GET":
                await _stream(writer, version, identity, path)
                await writer.drain()
                return
            body = identity + "\n"
            if path == "/peer":
                body = f"{identity}\n{peer[0]} {peer[1]}\n"
            elif path.startswith("/sleep/"):
                try:
                    ms = min(int(path.split("/")[2]), 60_000)
                except ValueError:
                    ms = 0
                await asyncio.sleep(ms / 1000)
            conn = headers.get("connection", "").lower()
            keep = (version == "HTTP/1.1" and conn != "close") or conn == "keep-alive"
            payload = body.encode()
            out = (f"{version} 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(payload)}\r\n"
                   f"X-Real: {identity}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
            writer.write(out + (payload if method != "HEAD" else b""))
            await writer.drain()
            if not keep:
                return
    finally:
        try:
            writer.close()
        except Exception:
            pass


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, identity: str):
        self.identity = identity.encode()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        self.transport.sendto(self.identity + b" " + data[:1024], addr)


async def serve(port: int, identity: str, bind: str, udp_port: int | None) -> None:
    loop = asyncio.get_running_loop()
    if udp_port:  # before the TCP listener, so "TCP accepts" means both are up
        await loop.create_datagram_endpoint(lambda: _UdpEcho(identity), local_addr=(bind, udp_port))
    server = await asyncio.start_server(lambda r, w: _handle(r, w, identity), bind, port,
                                        backlog=4096, reuse_address=True, limit=MAX_HEADER)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def write_nginx_conf(conf_dir: str, port: int, identity: str, bind: str = "0.0.0.0",
                     workers: int = 1) -> str:
    """An nginx configuration (in conf_dir) answering `identity\\n` on every path; returns its path."""
    os.makedirs(conf_dir, exist_ok=True)
    listen = f"{bind}:{port}" if bind not in ("0.0.0.0", "") else str(port)
    conf = f"""
worker_processes {workers};
daemon off;
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {conf_dir}/body;
    proxy_temp_path {conf_dir}/proxy;
    fastcgi_temp_path {conf_dir}/fastcgi;
    uwsgi_temp_path {conf_dir}/uwsgi;
    scgi_temp_path {conf_dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen {listen} backlog=8192 reuseport;
        location / {{
            add_header X-Real {identity};
            default_type text/plain;
            return 200 "{identity}\\n";
        }}
    }}
}}
"""
    path = os.path.join(conf_dir, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hadirector.lab.httpd")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--identity", default=os.uname().nodename)
    p.add_argument("--udp-echo", type=int, default=None, metavar="PORT")
    a = p.parse_args(argv)
    try:
        import uvloop  # type: ignore
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(a.port, a.identity, a.bind, a.udp_echo))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
