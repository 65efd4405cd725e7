"""Ports the kernel chooses and we keep.

Binding port 0, closing the socket and handing out the number is a race: anything may bind that
number before our server does. Here every port comes from a socket the kernel bound to port 0,
and that socket stays ours:

- in-process servers get the bound (listening) socket itself: `listening()` / `bound()` and
  `asyncio.start_server(sock=...)`, `loop.create_server(sock=...)`, aiohttp `SockSite`;
- "nothing listens here" ports are held by a socket that never accepts (`HeldPorts`, the
  `held_ports` fixture): TCP connects are refused, UDP datagrams draw ICMP port unreachable,
  and no other process can take the number while the test runs; a server that must stop and
  come back on one number listens on a `HeldPort`;
- external programs that must be given a number: see `procs.start_server` (it checks that the
  listening socket belongs to the process we started and retries on a fresh port if not).
"""

from __future__ import annotations

import socket


def bound(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a port the kernel picked (port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, kind)
    try:
        s.bind((host, 0))
    except BaseException:
        s.close()
        raise
    return s


def listening(host: str = "127.0.0.1", backlog: int = 128) -> socket.socket:
    """A listening TCP socket on a kernel-picked port, to hand to an in-process server."""
    s = bound(socket.SOCK_STREAM, host)
    s.listen(backlog)
    return s


def port_of(s: socket.socket) -> int:
    return s.getsockname()[1]


class HeldPort:
    """A TCP port the kernel picked, held by our bound socket (SO_REUSEPORT, never listening) until
    close(): a server on it can stop and come back on the same number (`listen()` again) while no
    other program can take it; while nothing listens, connects are refused. (Only sockets of our
    own user that also set SO_REUSEPORT may share it: inet_csk_bind_conflict.)"""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._hold = self._socket()
        try:
            self._hold.bind((host, 0))
        except BaseException:
            self._hold.close()
            raise
        self.port = port_of(self._hold)

    def _socket(self) -> socket.socket:
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return s

    def listen(self, host: str | None = None, backlog: int = 128) -> socket.socket:
        """A new listening socket on the held port, for `asyncio.start_server(sock=...)`; on
        another `host` address too when the port is held on the wildcard address."""
        s = self._socket()
        try:
            s.bind((host or self.host, self.port))
            s.listen(backlog)
        except BaseException:
            s.close()
            raise
        return s

    def close(self) -> None:
        self._hold.close()


class HeldPorts:
    """Kernel-picked ports held until close() (the `held_ports` fixture).

    closed_tcp(): bound, never listening, so a SYN gets a RST (connection refused).
    closed_udp(): bound and connected to itself, so the kernel delivers it no datagram from
    anyone else and answers them with ICMP port unreachable (compute_score in net/ipv4/udp.c
    skips a connected socket whose peer differs).
    reserve(): a HeldPort, for a server that goes down and comes back on one number."""

    def __init__(self) -> None:
        self._held: list = []

    def closed_tcp(self, host: str = "127.0.0.1") -> int:
        s = bound(socket.SOCK_STREAM, host)
        self._held.append(s)
        return port_of(s)

    def closed_udp(self, host: str = "127.0.0.1") -> int:
        s = bound(socket.SOCK_DGRAM, host)
        s.connect(s.getsockname())
        self._held.append(s)
        return port_of(s)

    def reserve(self, host: str = "127.0.0.1") -> HeldPort:
        h = HeldPort(host)
        self._held.append(h)
        return h

    def close(self) -> None:
        for s in self._held:
            s.close()
        self._held.clear()
