"""Ports the kernel chooses and we keep.

Binding port 0, closing the socket and handing out the number is a race: anything may bind that
number before our server does. Here every port comes from a socket the kernel bound to port 0,
and that socket stays ours:

- in-process servers get the bound (listening) socket itself: `listening()` / `bound()` and
  `asyncio.start_server(sock=...)`, `loop.create_server(sock=...)`, aiohttp `SockSite`;
- "nothing listens here" ports are held by a socket that never accepts (`ClosedPorts`, the
  `closed_ports` fixture): TCP connects are refused, UDP datagrams draw ICMP port unreachable,
  and no other process can take the number while the test runs;
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


class ClosedPorts:
    """Ports on which nothing answers, held (bound by us) until close(). TCP: bound, never
    listening, so a SYN gets a RST (connection refused). UDP: bound and connected to itself, so
    the kernel delivers it no datagram from anyone else and answers them with ICMP port
    unreachable (udp4_lib_lookup's compute_score skips a connected socket whose peer differs)."""

    def __init__(self) -> None:
        self._socks: list[socket.socket] = []

    def tcp(self, host: str = "127.0.0.1") -> int:
        s = bound(socket.SOCK_STREAM, host)
        self._socks.append(s)
        return port_of(s)

    def udp(self, host: str = "127.0.0.1") -> int:
        s = bound(socket.SOCK_DGRAM, host)
        s.connect(s.getsockname())
        self._socks.append(s)
        return port_of(s)

    def close(self) -> None:
        for s in self._socks:
            s.close()
        self._socks.clear()
