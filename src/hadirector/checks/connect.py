"""connect: a TCP connection to the real's check port that completes within checktimeout.

ldirectord `check_connect` opens a socket and closes it. We close with an RST (SO_LINGER 0), as
HAProxy does for its health checks, so 10,000 checks a second leave no TIME_WAIT sockets behind.
(A connect check of a UDP service is a ping: see base.probe_name, ldirectord `_check_real`.)
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct

from .base import UP, CheckTarget, ProbeContext, ProbeResult, register

_LINGER_RST = struct.pack("ii", 1, 0)


@register("connect")
async def check_connect(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if target.family_v6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        try:
            await loop.sock_connect(sock, (target.address, target.port))
        except OSError as e:
            why = os.strerror(e.errno) if e.errno else str(e)
            return ProbeResult(False, f"connect to port {target.port}: {why}")
        return UP
    finally:
        sock.close()
