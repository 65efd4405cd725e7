"""connect: a TCP connection to the real's check port that completes within checktimeout.

ldirectord `check_connect` opens a socket and closes it. We close with an RST (SO_LINGER 0), as
HAProxy does for its health checks, so 10,000 checks a second leave no TIME_WAIT sockets behind.
(A connect check of a UDP service is a ping: see base.probe_name, ldirectord `_check_real`.)

This is the check that runs most often, so it is written close to the system calls: a
non-blocking connect(2), one wait for writability, then SO_ERROR (connect(2) EINPROGRESS).
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import os
import socket
import struct

from .base import FAST_PROBES, UP, CheckTarget, ProbeContext, ProbeResult, register

_LINGER_RST = struct.pack("ii", 1, 0)
_STREAM_NB = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


@register("connect")
async def check_connect(target: CheckTarget, ctx: ProbeContext) -> ProbeResult:
    sock = socket.socket(socket.AF_INET6 if target.family_v6 else socket.AF_INET, _STREAM_NB)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        err = sock.connect_ex((target.address, target.port))
        if err == errno.EINPROGRESS:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            fd = sock.fileno()
            loop.add_writer(fd, _wake, fut)
            try:
                await fut
            finally:
                loop.remove_writer(fd)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return ProbeResult(False, f"connect to port {target.port}: {os.strerror(err)}")
        return UP
    finally:
        sock.close()


class _Pending:
    """A connect in flight on the fast path: no coroutine, no task; one writability callback and
    one timer. `done(result, timed_out)` is called exactly once unless `cancel()` comes first."""

    __slots__ = ("sock", "fd", "loop", "done", "port", "timer")

    def __init__(self, sock, loop, done, port: int) -> None:
        self.sock, self.fd, self.loop, self.done, self.port = sock, sock.fileno(), loop, done, port
        self.timer = None

    def _close(self) -> None:
        self.loop.remove_writer(self.fd)
        if self.timer is not None:
            self.timer.cancel()
        self.sock.close()

    def writable(self) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._close()
        self.done(UP if not err else ProbeResult(False, f"connect to port {self.port}: {os.strerror(err)}"), False)

    def expire(self, timeout: float) -> None:
        self._close()
        self.done(ProbeResult(False, f"no answer within {timeout:g} s"), True)

    def cancel(self) -> None:
        self._close()


def start_connect(target: CheckTarget, loop: asyncio.AbstractEventLoop, timeout: float, done) -> "_Pending | None":
    """The connect check as callbacks (used by the scheduler for its most frequent check).
    Returns the pending check, or None when it finished at once (done was called).
    It uses the C socket type directly (`_socket.socket`): the Python wrapper's constructor costs
    more than the rest of the check's user time."""
    sock = _socket.socket(socket.AF_INET6 if target.family_v6 else socket.AF_INET, _STREAM_NB)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        err = sock.connect_ex((target.address, target.port))
    except OSError as e:
        sock.close()
        done(ProbeResult(False, f"connect to port {target.port}: {e.strerror or e}"), False)
        return None
    if err != errno.EINPROGRESS:
        sock.close()
        done(UP if not err else ProbeResult(False, f"connect to port {target.port}: {os.strerror(err)}"), False)
        return None
    p = _Pending(sock, loop, done, target.port)
    loop.add_writer(p.fd, p.writable)
    p.timer = loop.call_later(timeout, p.expire, timeout)
    return p


FAST_PROBES["connect"] = start_connect
