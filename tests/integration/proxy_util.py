"""Real servers and clients for the proxy data plane tests (loopback, no root).

HttpReal: an asyncio HTTP/1.1 server answering every request with its own id (keep-alive
supported). It understands a PROXY protocol v1/v2 header at the start of a connection and answers
`/whoami` with the client address the header carried. UdpReal: answers each datagram with
`<id>:<datagram>`, after stripping (and recording) a PROXY v2 header.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct

from hadirector.balancer.state import build_desired
from hadirector.config.model import Balancer

PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def parse_proxy(buf: bytes):
    """(consumed bytes, (src host, src port) or None); consumed 0 when there is no header;
    None when more bytes are needed."""
    if buf.startswith(b"PROXY "):
        end = buf.find(b"\r\n")
        if end < 0:
            return None
        parts = buf[:end].decode().split()
        return end + 2, (parts[2], int(parts[4]))
    if buf.startswith(PP2_SIG[:len(buf)]) and len(buf) < 16:
        return None
    if buf.startswith(PP2_SIG):
        ver_cmd, fam, ln = struct.unpack("!BBH", buf[12:16])
        if len(buf) < 16 + ln:
            return None
        body = buf[16:16 + ln]
        if fam >> 4 == 1:
            src = (str(ipaddress.IPv4Address(body[0:4])), struct.unpack("!H", body[8:10])[0])
        else:
            src = (str(ipaddress.IPv6Address(body[0:16])), struct.unpack("!H", body[32:34])[0])
        return 16 + ln, src
    return 0, None


class HttpReal:
    def __init__(self, ident: str, host: str = "127.0.0.2", port: int = 0) -> None:
        self.ident = ident
        self.host = host
        self.port = port
        self.server: asyncio.AbstractServer | None = None
        self.connections = 0
        self.requests = 0
        self.proxied_from: list = []  # client addresses from PROXY headers
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> "HttpReal":
        self.server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in list(self.writers):
                w.close()
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        buf = b""
        src = None
        try:
            # an optional PROXY header first
            while True:
                got = parse_proxy(buf)
                if got is not None:
                    break
                chunk = await reader.read(4096)
                if not chunk:
                    return
                buf += chunk
            n, src = got
            if n:
                self.proxied_from.append(src)
            buf = buf[n:]
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.requests += 1
                line = head.split(b"\r\n", 1)[0].decode()
                path = line.split()[1] if len(line.split()) > 1 else "/"
                close = b"connection: close" in head.lower()
                if path == "/whoami":
                    body = f"{self.ident} {src[0]}:{src[1]}" if src else f"{self.ident} none"
                elif path.startswith("/bytes/"):
                    size = int(path.split("/")[2])
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
                    chunk = b"x" * 65536
                    sent = 0
                    while sent < size:
                        n = min(len(chunk), size - sent)
                        writer.write(chunk[:n])
                        sent += n
                        self.sent = sent
                        await writer.drain()
                    continue
                else:
                    body = self.ident
                data = body.encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (
                    len(data), b"Connection: close\r\n" if close else b"", data))
                await writer.drain()
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()


class UdpReal(asyncio.DatagramProtocol):
    def __init__(self, ident: str, host: str = "127.0.0.2") -> None:
        self.ident = ident
        self.host = host
        self.port = 0
        self.transport = None
        self.datagrams = 0
        self.proxied_from: list = []

    async def start(self) -> "UdpReal":
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def datagram_received(self, data, addr):
        self.datagrams += 1
        got = parse_proxy(data)
        if got and got[0]:
            self.proxied_from.append(got[1])
            data = data[got[0]:]
        self.transport.sendto(self.ident.encode() + b":" + data, addr)


async def http_get(host: str, port: int, path: str = "/", source: str | None = None,
                   timeout: float = 5.0) -> str:
    """One request on a new connection (Connection: close); returns the body."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            host, port, local_addr=(source, 0) if source else None)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            return await read_response(reader)
        finally:
            writer.close()


async def read_response(reader: asyncio.StreamReader) -> str:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return (await reader.readexactly(length)).decode()


class KeepAlive:
    """A persistent client connection sending requests one after the other."""

    def __init__(self) -> None:
        self.reader = self.writer = None

    async def open(self, host: str, port: int, source: str | None = None) -> "KeepAlive":
        self.reader, self.writer = await asyncio.open_connection(
            host, port, local_addr=(source, 0) if source else None)
        return self

    async def get(self, path: str = "/", timeout: float = 5.0) -> str:
        async with asyncio.timeout(timeout):
            self.writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            return await read_response(self.reader)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def balancer_config(reals, *, port=80, vip="127.0.0.10", protocol="tcp", scheduler="wrr", **extra) -> Balancer:
    """A one-service balancer: reals are (host, port, weight) tuples."""
    v = {"address": vip, "port": port, "protocol": protocol, "scheduler": scheduler,
         "reals": [{"address": h, "port": p, "weight": w, "method": "masq"} for h, p, w in reals]}
    v.update(extra)
    return Balancer(virtual=[v])


def desired_for(balancer: Balancer, health=None):
    return build_desired(balancer, health)


def service_key(vip="127.0.0.10", port=80, protocol="tcp") -> str:
    return f"{protocol.upper()} {vip}:{port}"


def free_udp_client(host: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(3.0)
    return s


class DataPlanes:
    """Makes ProxyDataPlanes listening on `listen` unless told otherwise; `close()` closes them all
    (the tests' `make_dp` fixture)."""

    def __init__(self, key: str, listen: tuple[str, int] = ("127.0.0.10", 0)):
        self.key, self.listen, self.made = key, listen, []

    def __call__(self, **kw):
        from hadirector.dataplane.proxy import ProxyDataPlane
        kw.setdefault("listen", {self.key: self.listen})
        dp = ProxyDataPlane(**kw)
        self.made.append(dp)
        return dp

    async def close(self) -> None:
        for dp in self.made:
            await dp.close()
