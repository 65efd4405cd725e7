"""The proxy's TCP relay: every listener and relayed socket of one data plane on one epoll set.

How it works: TCP is relayed on raw non-blocking sockets watched by one private epoll set
(edge-triggered), itself watched by the event loop. Compared with an asyncio transport per socket
this saves the syscalls transports make on every connection (getsockname, getpeername, SO_ERROR,
epoll changes) and a Task per upstream connect: about a third of the CPU a short connection
costs. Reads stop at a short read (the socket is drained, the next data brings a new edge) unless
the event also said the peer hung up, as nginx does. New sockets are only made after every event
of a batch was handled, so an event of a closed socket can never reach a new one reusing its fd.

The bookkeeping is IPVS's (ip_vs_proto_tcp.c): a connection counts as inactive until its upstream
connection is established, active while both directions are open, inactive again after the first
FIN. A FIN from one side is passed on with shutdown(SHUT_WR) once what came before it is written;
when both directions are finished the connection is closed. Timeouts close gracefully;
`expire_nodest_conn` and a refused connection reset. Backpressure: what cannot be written to one
side at once waits in that side's buffer; while it holds `buffer_high` bytes or more the relay
stops reading from the other side, and reads again once it has drained.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
from typing import TYPE_CHECKING, Any

from ...balancer.schedulers import addr_int
from .proxy_protocol import proxy_header
from .table import Timeouts

if TYPE_CHECKING:
    from .plane import ProxyDataPlane, Served

log = logging.getLogger(__name__)

_EV_IN = select.EPOLLIN
_EV_OUT = select.EPOLLOUT
_EV_HUP = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_EV_SIDE = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
_RECV = 65536
_READS_PER_TURN = 16  # full reads of one socket before other connections get their turn
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a RST


class _Side:
    """One socket of a relayed connection. `buf` holds bytes waiting to be written to it."""

    __slots__ = ("sock", "fd", "conn", "peer", "buf", "writable", "readable", "hup", "eof_in",
                 "shut", "shut_pending", "is_client")

    def __init__(self, sock, conn, is_client: bool, writable: bool) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.conn = conn
        self.peer = None
        self.buf: bytearray | None = None
        self.writable = writable  # a send will not block (client: yes; upstream: once connected)
        self.readable = False
        self.hup = False
        self.eof_in = False  # we read its FIN
        self.shut = False  # we sent it our FIN
        self.shut_pending = False  # send our FIN once buf is flushed
        self.is_client = is_client


class _Conn:
    """A proxied TCP connection: both sides and the bookkeeping IPVS keeps for it."""

    __slots__ = ("svc", "real", "dest", "tmpl", "client", "up", "caddr", "state", "nin", "bin",
                 "nout", "bout", "seen", "since", "done", "engine")

    def __init__(self, engine: "TcpRelay", svc: "Served", csock, caddr, dest, tmpl, now) -> None:
        self.engine = engine
        self.svc = svc
        self.dest = dest
        self.real = dest.data
        self.tmpl = tmpl
        self.caddr = caddr
        self.state = 0  # 0 connecting, 1 established, 2 closing (a FIN seen)
        self.nin = self.bin = self.nout = self.bout = 0
        self.seen = -1
        self.since = now
        self.done = False
        self.client = _Side(csock, self, True, True)
        self.up = None

    # the sweeper and the data plane call these
    def check_timeout(self, now: float, t: Timeouts, connect_timeout: float) -> None:
        total = self.nin + self.nout
        if total != self.seen:
            self.seen = total
            if self.state:  # activity restarts the established / FIN timeouts
                self.since = now
            return
        limit = t.tcp if self.state == 1 else (t.tcpfin if self.state == 2 else connect_timeout)
        if now - self.since >= limit:
            if self.state == 0:
                log.debug("%s: connect to %s:%s timed out", self.svc.key, self.real.host, self.real.port)
                self.svc.dp.connect_errors += 1
                self.svc.dp.connect_timeouts += 1
            else:
                log.debug("%s: closing %s connection idle for %.0fs", self.svc.key,
                          ("established", "half-closed")[self.state - 1], now - self.since)
            self.engine.close_conn(self)  # a timeout closes gracefully (FIN)

    def abort(self) -> None:
        """Reset both sides (the real left with expire_nodest_conn, the service went away)."""
        self.engine.close_conn(self, rst=True)


class TcpRelay:
    """Every TCP listener and relayed socket of one data plane, on one epoll set."""

    def __init__(self, dp: "ProxyDataPlane") -> None:
        self.dp = dp
        self.loop = dp.loop
        self.ep = select.epoll()
        self.fds: dict[int, Any] = {}  # fd -> _Side, or the service (Served) listening on it
        self.loop.add_reader(self.ep.fileno(), self._events)

    def close(self) -> None:
        self.loop.remove_reader(self.ep.fileno())
        self.ep.close()

    # ---- listeners
    def listen(self, svc: "Served", sock) -> None:
        self.fds[sock.fileno()] = svc
        self.ep.register(sock.fileno(), _EV_IN)  # level-triggered: unaccepted connections repeat

    def unlisten(self, sock) -> None:
        self.fds.pop(sock.fileno(), None)
        try:
            self.ep.unregister(sock.fileno())
        except (OSError, ValueError):
            pass

    # ---- the event batch
    def _events(self) -> None:
        fds = self.fds
        accept = None
        try:
            events = self.ep.poll(0, 512)
        except OSError:
            return
        for fd, ev in events:
            s = fds.get(fd)
            if s is None:
                continue
            if s.__class__ is not _Side:
                if accept is None:
                    accept = []
                accept.append(s)
                continue
            if ev & _EV_OUT and not s.writable:
                if not s.is_client and s.conn.state == 0:
                    if ev & select.EPOLLERR:
                        self._connect_failed(s)
                        continue
                    self._connected(s)
                else:
                    s.writable = True
                    self._flush(s)
                if s.conn.done:
                    continue
            if ev & (_EV_IN | _EV_HUP):
                if not s.is_client and s.conn.state == 0:
                    self._connect_failed(s)  # error or hang-up before the connect completed
                    continue
                s.readable = True
                if ev & _EV_HUP:
                    s.hup = True
                self._pump(s)
        if accept is not None:
            for svc in accept:
                self._accept(svc)

    # ---- new connections
    def _accept(self, svc: "Served") -> None:
        sock = svc.listener
        dp = self.dp
        for _ in range(128):
            try:
                csock, caddr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: try again on the next event
                log.warning("%s: accept: %s", svc.key, exc)
                return
            now = dp.now()
            if svc.uses_client:  # sh/mh hash it, persistence keys on it
                got = svc.schedule(addr_int(caddr[0]), caddr[1], now)
            else:
                got = svc.schedule(0, 0, now)
            if got is None:
                # no destination available: IPVS drops the SYN; we refuse with a reset
                dp.no_dest += 1
                csock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                csock.close()
                continue
            dest, tmpl = got
            csock.setblocking(False)
            csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = _Conn(self, svc, csock, caddr, dest, tmpl, now)
            real = c.real
            dest.bind()  # new connections start inactive (IP_VS_CONN_F_INACTIVE)
            real.c_conns += 1
            real.conns.add(c)
            self.fds[c.client.fd] = c.client
            self.ep.register(c.client.fd, _EV_SIDE)
            try:
                usock = socket.socket(real.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            except OSError as exc:
                log.warning("%s: cannot make a socket for %s:%s: %s", svc.key, real.host, real.port, exc)
                dp.connect_errors += 1
                self.close_conn(c, rst=True)
                continue
            up = c.up = _Side(usock, c, False, False)
            up.peer = c.client
            c.client.peer = up
            usock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = usock.connect_ex(real.sockaddr)
            self.fds[up.fd] = up
            self.ep.register(up.fd, _EV_SIDE)
            if err not in (0, errno.EINPROGRESS):
                self._connect_failed(up, err)

    def _connected(self, up: _Side) -> None:
        c = up.conn
        up.writable = True
        c.state = 1
        c.dest.set_active()
        c.since = self.dp.now()
        pp = c.svc.pp
        if pp is not None:
            try:
                local = c.client.sock.getsockname()
            except OSError:
                local = ("0.0.0.0", 0)
            head = proxy_header(pp, "tcp", c.caddr, local)
            up.buf = bytearray(head) if up.buf is None else bytearray(head) + up.buf
        client = c.client
        if up.buf is not None or client.eof_in:
            if client.eof_in:
                up.shut_pending = True
                self._half_close(c)
            self._flush(up)
        elif client.readable:
            self._pump(client)

    def _connect_failed(self, up: _Side, err: int | None = None) -> None:
        c = up.conn
        if c.done:
            return
        if err is None:
            try:
                err = up.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError as exc:
                err = exc.errno
        log.debug("%s: connect to %s:%s failed: %s", c.svc.key, c.real.host, c.real.port,
                  os.strerror(err) if err else "hang-up")
        self.dp.connect_errors += 1
        self.close_conn(c, rst=True)

    # ---- moving bytes
    def _pump(self, s: _Side) -> None:
        """Read from `s` and write to its peer until `s` is drained or the peer is full."""
        p = s.peer
        c = s.conn
        high = self.dp.buffer_high
        budget = _READS_PER_TURN
        while s.readable:
            budget -= 1
            if budget < 0:
                # fairness: a fast stream yields to the other connections, and carries on soon
                # (edge-triggered: no new event would come for data already waiting)
                self.loop.call_soon(self._resume, s)
                return
            pbuf = p.buf
            if pbuf is not None and len(pbuf) >= high:
                return  # backpressure: read again once the peer has drained
            try:
                data = s.sock.recv(_RECV)
            except (BlockingIOError, InterruptedError):
                s.readable = False
                return
            except OSError:
                self.close_conn(c, rst=True)
                return
            n = len(data)
            if not n:
                self._eof(s)
                return
            if s.is_client:
                c.nin += 1
                c.bin += n
            else:
                c.nout += 1
                c.bout += n
            if n < _RECV and not s.hup:
                s.readable = False  # a short read drained the socket; new data brings a new edge
            if pbuf is None and p.writable:
                sent = self._send(p, data)
                if sent < 0:
                    return
                if sent < n:
                    p.buf = bytearray(data[sent:])
                    p.writable = False
            elif pbuf is None:
                p.buf = bytearray(data)  # not connected yet
            else:
                pbuf += data

    def _send(self, p: _Side, data) -> int:
        """Write what `p` takes now: bytes sent (0: it would block), or -1 when the send failed
        and the connection was reset."""
        try:
            return p.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self.close_conn(p.conn, rst=True)
            return -1

    def _resume(self, s: _Side) -> None:
        if not s.conn.done and s.readable:
            self._pump(s)

    def _flush(self, p: _Side) -> None:
        """`p` can take writes again: send what waits for it, then resume its peer's reading."""
        c = p.conn
        buf = p.buf
        if buf:
            sent = self._send(p, buf)
            if sent < 0:
                return
            if sent < len(buf):
                del buf[:sent]
                p.writable = False
                return
        p.buf = None
        if p.shut_pending:
            self._shutdown(p)
            if c.done:
                return
        s = p.peer
        if s.readable:
            self._pump(s)

    def _eof(self, s: _Side) -> None:
        """`s` sent its FIN: pass it on (shutdown) once what it sent before is written."""
        s.readable = False
        s.eof_in = True
        self._half_close(s.conn)
        p = s.peer
        p.shut_pending = True
        if p.buf is None and p.writable:
            self._shutdown(p)

    def _shutdown(self, p: _Side) -> None:
        """Send `p` our FIN; when both directions are finished and flushed, close instead."""
        p.shut_pending = False
        s = p.peer
        if p.eof_in and s.eof_in and p.buf is None and s.buf is None:
            self.close_conn(p.conn)
            return
        if p.shut:
            return
        p.shut = True
        try:
            p.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close_conn(p.conn, rst=True)

    @staticmethod
    def _half_close(c: _Conn) -> None:
        if c.state == 1:
            c.state = 2  # FIN_WAIT / CLOSE_WAIT: inactive, tcpfin timeout
            c.dest.set_inactive()
            c.since = c.svc.dp.now()

    # ---- the end
    def close_conn(self, c: _Conn, rst: bool = False) -> None:
        if c.done:
            return
        c.done = True
        fds = self.fds
        for side in (c.client, c.up):
            if side is None:
                continue
            if fds.get(side.fd) is side:
                del fds[side.fd]
            try:
                if rst:
                    side.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                side.sock.close()  # also leaves the epoll set
            except OSError:
                pass
        svc = c.svc
        c.dest.unbind(inactive=c.state != 1)
        if c.tmpl is not None:
            c.tmpl.table.release(c.tmpl, svc.dp.now())
        real = c.real
        real.retire(c)
        if real.dest.available is False:
            svc.real_gone(real)
