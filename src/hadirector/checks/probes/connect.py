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
import heapq
import os
import select
import socket
import struct

from ..base import FAST_PROBES, UP, CheckTarget, ProbeContext, ProbeResult, register

_LINGER_RST = struct.pack("ii", 1, 0)
_STREAM_NB = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


# oracle: no client here (ldirectord needs DBD::Oracle); its check is that the listener accepts
@register("connect", services=("oracle",))
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
    """One connect in flight on the fast path."""

    __slots__ = ("sock", "fd", "done", "port", "timeout", "engine")

    def __init__(self, engine, sock, done, port: int, timeout: float) -> None:
        self.engine, self.sock, self.fd, self.done, self.port, self.timeout = engine, sock, sock.fileno(), done, port, timeout

    def cancel(self) -> None:
        if self.engine.pending.get(self.fd) is self:
            del self.engine.pending[self.fd]
            self.sock.close()


class ConnectEngine:
    """Connect checks without a task, a timer or an event-loop watcher each: every socket in
    flight is registered (EPOLLOUT | EPOLLONESHOT) in one epoll set of our own, whose descriptor is
    the only thing the event loop watches; completions are handled in batches, and timeouts by one
    timer at the earliest deadline. This is what lets one core check 10,000 reals a second."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ep = select.epoll()
        self.pending: dict[int, _Pending] = {}
        self.deadlines: list[tuple[float, int, _Pending]] = []
        self.seq = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = float("inf")
        loop.add_reader(self.ep.fileno(), self._ready)

    def start(self, target: CheckTarget, timeout: float, done) -> "_Pending | None":
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
        deadline = self.loop.time() + timeout
        p = _Pending(self, sock, done, target.port, timeout)
        self.pending[p.fd] = p
        self.ep.register(p.fd, select.EPOLLOUT | select.EPOLLONESHOT)
        self.seq += 1
        heapq.heappush(self.deadlines, (deadline, self.seq, p))
        if deadline < self.timer_at:
            self._arm(deadline)
        return p

    def _ready(self) -> None:
        pending = self.pending
        for fd, _ in self.ep.poll(0, 4096):
            p = pending.pop(fd, None)
            if p is None:
                continue
            err = p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            p.sock.close()  # also leaves the epoll set
            p.done(UP if not err else ProbeResult(False, f"connect to port {p.port}: {os.strerror(err)}"), False)

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self.timer, self.timer_at = None, float("inf")
        now = self.loop.time()
        heap, pending = self.deadlines, self.pending
        while heap and (heap[0][0] <= now or pending.get(heap[0][2].fd) is not heap[0][2]):
            _, _, p = heapq.heappop(heap)
            if pending.get(p.fd) is not p:
                continue  # finished or cancelled
            del pending[p.fd]
            p.sock.close()
            p.done(ProbeResult(False, f"no answer within {p.timeout:g} s"), True)
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.loop.remove_reader(self.ep.fileno())
        for p in list(self.pending.values()):
            p.sock.close()
        self.pending.clear()
        self.ep.close()


def start_connect(target: CheckTarget, ctx: ProbeContext, loop: asyncio.AbstractEventLoop, timeout: float,
                  done) -> "_Pending | None":
    """The connect check as callbacks (the scheduler's hot path). Returns the pending check, or
    None when it finished at once (done was called)."""
    engine = ctx.extras.get("connect")
    if engine is None or engine.loop is not loop:
        engine = ctx.extras["connect"] = ConnectEngine(loop)
    return engine.start(target, timeout, done)


FAST_PROBES["connect"] = start_connect
