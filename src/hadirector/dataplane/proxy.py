"""The userspace proxy data plane: TCP and UDP virtual services relayed by asyncio, no root needed.

How it works: for every virtual service of the desired state the proxy listens on the service's
address and port (or on an address given in `listen`), schedules each new client connection (TCP)
or flow (UDP, keyed by client address and port) with the service's IPVS scheduler
(balancer/schedulers.py) and relays bytes between the client and the chosen real server. TCP is
relayed on non-blocking sockets in one private epoll set watched by the event loop (see "TCP
relay" below: a third less CPU per short connection than a transport per socket); UDP uses asyncio
datagram transports. It keeps the kernel's bookkeeping so `hadirector lvs` reads like
`ipvsadm -L -n`:

- A connection counts as inactive until its upstream connection is established, active while both
  directions are open, inactive again after the first FIN (ip_vs_proto_tcp.c: only ESTABLISHED is
  active). UDP flows always count as inactive, as in IPVS. Closed connections leave the counts at
  once (the proxy has no TIME_WAIT entries).
- Weight 0 (quiescent) stops new connections; open ones go on. A real removed from the table keeps
  its open connections unless `expire_nodest_conn` is set (the IPVS sysctl), which closes them.
  Re-adding a removed real that still has connections revives it, as IPVS's dest trash does.
- Persistence (ipvsadm -p/-M) uses balancer/persistence.py templates.
- Timeouts as `ipvsadm --set tcp tcpfin udp`: an established TCP connection idle for `tcp`
  seconds, a half-closed one for `tcpfin` seconds, a UDP flow idle for `udp` seconds is closed.
- Backpressure: what cannot be written to one side at once waits in that side's buffer; while it
  holds `buffer_high` bytes or more the proxy stops reading from the other side, and reads again
  once it has drained. Memory per connection is bounded (buffer_high plus one read per direction).
- A FIN from one side is passed on with shutdown(SHUT_WR) once what came before it is written;
  when both directions are finished the connection is closed. Timeouts close gracefully;
  `expire_nodest_conn` and a refused connection reset.
- PROXY protocol v1 or v2 (haproxy's proxy-protocol.txt) can be sent to the reals first on each
  connection (v2 also per UDP datagram).
- Counters: conns, packets (one per read or datagram: a proxy sees reads, not packets) and bytes,
  in (client -> real) and out (real -> client); rates estimated as ip_vs_est.c does.

Limits: fwmark services cannot be proxied (they are skipped and reported by `unsupported`); the
reals see connections from the proxy's address (use the PROXY protocol to pass the client's);
`gate`/`ipip` forwarding methods are relayed like `masq`.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import select
import socket
import struct
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..balancer.persistence import PersistenceTable
from ..balancer.schedulers import Dest, Scheduler, make_scheduler, sched_flag_bits
from ..balancer.state import DesiredState, RealState, ServiceState
from .base import (BalancerStats, Counters, DataPlane, DataPlaneError, RateEstimator, RealStats,
                   ServiceStats)

log = logging.getLogger(__name__)

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
MAX_PENDING_UDP = 64  # datagrams held per flow while its upstream socket opens
SWEEP_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """`ipvsadm --set tcp tcpfin udp`, seconds; the defaults are IPVS's (15 min, 2 min, 5 min)."""

    tcp: float = 900.0
    tcpfin: float = 120.0
    udp: float = 300.0


# --------------------------------------------------------------------------- PROXY protocol

PP2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_header(version: str, proto: str, src: tuple, dst: tuple) -> bytes:
    """A PROXY protocol header (haproxy doc/proxy-protocol.txt): v1 text or v2 binary."""
    src_ip = ipaddress.ip_address(src[0])
    dst_ip = ipaddress.ip_address(dst[0])
    if isinstance(src_ip, ipaddress.IPv4Address) != isinstance(dst_ip, ipaddress.IPv4Address):
        # mixed families (v4-mapped): present both as IPv6
        src_ip = ipaddress.IPv6Address(f"::ffff:{src_ip}") if src_ip.version == 4 else src_ip
        dst_ip = ipaddress.IPv6Address(f"::ffff:{dst_ip}") if dst_ip.version == 4 else dst_ip
    v6 = src_ip.version == 6
    if version == "v1":
        if proto != "tcp":
            raise ValueError("PROXY protocol v1 carries TCP only; use v2 for UDP")
        return (f"PROXY {'TCP6' if v6 else 'TCP4'} {src_ip} {dst_ip} {src[1]} {dst[1]}\r\n").encode()
    if version == "v2":
        fam = (0x20 if v6 else 0x10) | (0x01 if proto == "tcp" else 0x02)  # AF_INET[6] + STREAM/DGRAM
        body = src_ip.packed + dst_ip.packed + struct.pack("!HH", src[1], dst[1])
        return PP2_SIGNATURE + struct.pack("!BBH", 0x21, fam, len(body)) + body  # v2, PROXY command
    raise ValueError(f"unknown PROXY protocol version {version!r}; expected v1 or v2")


def _addr_int(host: str) -> int:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, host), "big")
    except OSError:
        return int(ipaddress.ip_address(host.split("%", 1)[0]))


# --------------------------------------------------------------------------- runtime objects

class _Real:
    """Runtime side of one real server of one service."""

    __slots__ = ("state", "host", "port", "family", "sockaddr", "dest", "conns", "c_conns",
                 "c_inpkts", "c_outpkts", "c_inbytes", "c_outbytes", "est")

    def __init__(self, state: RealState) -> None:
        self.state = state
        self.host = state.address
        self.port = state.port
        v6 = ":" in state.address
        self.family = socket.AF_INET6 if v6 else socket.AF_INET
        self.sockaddr = (state.address, state.port, 0, 0) if v6 else (state.address, state.port)
        self.dest = Dest(state.key, _addr_int(state.address), state.port, state.weight,
                         state.upper_threshold, state.lower_threshold, data=self)
        self.conns: set = set()  # live connections / flows
        # counters of connections that already ended (live ones are summed on demand)
        self.c_conns = 0
        self.c_inpkts = self.c_outpkts = self.c_inbytes = self.c_outbytes = 0
        self.est = RateEstimator()

    def counters(self) -> Counters:
        ip = op = ib = ob = 0
        for c in self.conns:
            ip += c.nin
            op += c.nout
            ib += c.bin
            ob += c.bout
        return Counters(self.c_conns, self.c_inpkts + ip, self.c_outpkts + op,
                        self.c_inbytes + ib, self.c_outbytes + ob)

    def retire(self, c) -> None:
        self.conns.discard(c)
        self.c_inpkts += c.nin
        self.c_outpkts += c.nout
        self.c_inbytes += c.bin
        self.c_outbytes += c.bout


class _Service:
    """Runtime side of one virtual service."""

    def __init__(self, dp: "ProxyDataPlane", state: ServiceState) -> None:
        self.dp = dp
        self.state = state
        self.key = state.key
        self.proto = state.protocol
        self.sched: Scheduler = make_scheduler(state.scheduler, sched_flag_bits(state.sched_flags))
        self.uses_client = True  # set by _set_persistence: schedule() needs the client address
        self.dests: list[Dest] = []  # kernel order: newest first
        self.reals: dict[tuple[str, int], _Real] = {}
        self.trash: dict[tuple[str, int], _Real] = {}  # removed, connections still open
        self.persist: PersistenceTable | None = None
        self.retired = Counters()
        self.est = RateEstimator()
        self.listener: socket.socket | None = None  # TCP: watched by the data plane's _TcpEngine
        self.udp: asyncio.DatagramTransport | None = None
        self.flows: dict[Any, "_UdpFlow"] = {}
        self.vaddr = _addr_int(state.address) if state.address else 0
        self.vport = state.port or 0
        self.pp: str | None = None
        self.local: tuple[str, int] | None = None  # where a UDP service listens
        self._set_persistence(state)

    def _set_persistence(self, state: ServiceState) -> None:
        """(Re)build the template table when persistence settings change; old templates go."""
        if self.persist is not None:
            for t in list(self.persist.templates.values()):
                self.persist._drop(t)
            self.persist = None
        self.uses_client = state.persistent_ms is not None or state.scheduler in ("sh", "mh")
        if state.persistent_ms is not None:
            prefix = state.netmask if state.netmask is not None else (128 if state.ipv6 else 32)
            self.persist = PersistenceTable(state.persistent_ms / 1000, prefix, state.ipv6,
                                            self.dp.expire_quiescent_template)

    # ------------------------------------------------------------------ desired-state updates

    def update(self, state: ServiceState) -> None:
        old = self.state
        self.state = state
        if (state.scheduler, state.sched_flags) != (old.scheduler, old.sched_flags):
            self.sched = make_scheduler(state.scheduler, sched_flag_bits(state.sched_flags))
            self.sched.update(self.dests)  # init_service with the current list
        if (state.persistent_ms, state.netmask) != (old.persistent_ms, old.netmask):
            self._set_persistence(state)
        self.uses_client = state.persistent_ms is not None or state.scheduler in ("sh", "mh")
        self.sync_reals(state.installed)

    def sync_reals(self, installed: tuple[RealState, ...]) -> None:
        """Bring the table to `installed`, one change at a time as ipvsadm would make them, so
        the scheduler sees the same sequence of add/del/upd hooks as the kernel's."""
        want = {r.key: r for r in installed}
        for key in [k for k in self.reals if k not in want]:
            self._remove(key)
        for r in installed:
            cur = self.reals.get(r.key)
            if cur is None:
                self._add(r)
            elif cur.state != r:
                d = cur.dest
                changed = d.weight != r.weight
                d.set_weight(r.weight)
                d.set_thresholds(r.upper_threshold, r.lower_threshold)
                cur.state = r
                if changed:
                    self.sched.update(self.dests)

    def _add(self, r: RealState) -> None:
        real = self.trash.pop(r.key, None)
        if real is not None:  # ip_vs_trash_get_dest: the same dest comes back with its counts
            real.state = r
            real.dest.available = True
            real.dest.set_weight(r.weight)
            real.dest.set_thresholds(r.upper_threshold, r.lower_threshold)
        else:
            real = _Real(r)
        self.reals[r.key] = real
        self.dests.insert(0, real.dest)  # list_add_rcu: at the head
        self.sched.update(self.dests)

    def _remove(self, key: tuple[str, int]) -> None:
        real = self.reals.pop(key)
        d = real.dest
        d.available = False
        self.dests.remove(d)
        self.sched.update(self.dests)
        if self.persist is not None:
            self.persist.drop_dest(d)
        if self.dp.expire_nodest_conn:
            for c in list(real.conns):
                c.abort()
        if real.conns:
            self.trash[key] = real
        else:
            self.retired = self.retired + real.counters()

    def real_gone(self, real: _Real) -> None:
        """A trashed real's last connection ended."""
        if not real.conns and self.trash.get(real.state.key) is real:
            del self.trash[real.state.key]
            self.retired = self.retired + real.counters()

    # ------------------------------------------------------------------ scheduling

    def schedule(self, caddr: int, cport: int, now: float):
        """(dest, template) for a new connection, or None: ip_vs_schedule."""
        p = self.persist
        if p is None:
            d = self.sched.schedule(caddr, cport, self.vaddr, self.vport, now)
            return None if d is None else (d, None)
        sched = self.sched
        got = p.schedule(caddr, now, lambda: sched.schedule(caddr, cport, self.vaddr, self.vport, now))
        if got is None:
            return None
        p.attach(got[1], now)
        return got

    def counters(self) -> Counters:
        total = self.retired
        for r in self.reals.values():
            total = total + r.counters()
        for r in self.trash.values():
            total = total + r.counters()
        return total

    def all_reals(self):
        yield from self.reals.values()
        yield from self.trash.values()


# --------------------------------------------------------------------------- TCP relay
#
# TCP is relayed on raw non-blocking sockets watched by one private epoll set (edge-triggered),
# itself watched by the event loop. Compared with an asyncio transport per socket this saves the
# syscalls transports make on every connection (getsockname, getpeername, SO_ERROR, epoll
# changes) and a Task per upstream connect: about a third of the CPU a short connection costs.
# Reads stop at a short read (the socket is drained, the next data brings a new edge) unless the
# event also said the peer hung up, as nginx does. New sockets are only made after every event of
# a batch was handled, so an event of a closed socket can never reach a new one reusing its fd.

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

    def __init__(self, engine: "_TcpEngine", svc: _Service, csock, caddr, dest, tmpl, now) -> None:
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


class _TcpEngine:
    """Every TCP listener and relayed socket of one data plane, on one epoll set."""

    def __init__(self, dp: "ProxyDataPlane") -> None:
        self.dp = dp
        self.loop = dp.loop
        self.ep = select.epoll()
        self.fds: dict[int, Any] = {}  # fd -> _Side, or the _Service listening on it
        self.loop.add_reader(self.ep.fileno(), self._events)

    def close(self) -> None:
        self.loop.remove_reader(self.ep.fileno())
        self.ep.close()

    # ---- listeners
    def listen(self, svc: _Service, sock) -> None:
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
    def _accept(self, svc: _Service) -> None:
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
                got = svc.schedule(_addr_int(caddr[0]), caddr[1], now)
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
                try:
                    sent = p.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self.close_conn(c, rst=True)
                    return
                if sent < n:
                    p.buf = bytearray(data[sent:])
                    p.writable = False
            elif pbuf is None:
                p.buf = bytearray(data)  # not connected yet
            else:
                pbuf += data

    def _resume(self, s: _Side) -> None:
        if not s.conn.done and s.readable:
            self._pump(s)

    def _flush(self, p: _Side) -> None:
        """`p` can take writes again: send what waits for it, then resume its peer's reading."""
        c = p.conn
        buf = p.buf
        if buf:
            try:
                sent = p.sock.send(buf)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close_conn(c, rst=True)
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


# --------------------------------------------------------------------------- UDP relay

class _UdpFlow(asyncio.DatagramProtocol):
    """One client's flow to one real: a connected UDP socket towards the real."""

    __slots__ = ("svc", "real", "dest", "tmpl", "client", "key", "ut", "pending", "nin", "bin",
                 "nout", "bout", "seen", "since", "done", "ops")

    def __init__(self, svc: _Service, real: _Real, tmpl, client, key, ops: bool) -> None:
        self.svc = svc
        self.real = real
        self.dest = real.dest
        self.tmpl = tmpl
        self.client = client
        self.key = key
        self.ut = None
        self.pending: list[bytes] | None = []
        self.nin = self.bin = self.nout = self.bout = 0
        self.seen = -1
        self.since = svc.dp.now()
        self.done = False
        self.ops = ops

    def send(self, data: bytes) -> None:
        self.nin += 1
        self.bin += len(data)
        pp = self.svc.pp
        if pp is not None:
            data = proxy_header(pp, "udp", self.client, self.svc.local) + data
        if self.ut is not None:
            self.ut.sendto(data)
        elif self.pending is not None and len(self.pending) < MAX_PENDING_UDP:
            self.pending.append(data)
        else:
            self.svc.dp.udp_dropped += 1

    def connection_made(self, transport):
        if self.done:
            transport.close()
            return
        self.ut = transport
        for d in self.pending or ():
            transport.sendto(d)
        self.pending = None

    def datagram_received(self, data, addr):
        lt = self.svc.udp
        if lt is not None:
            self.nout += 1
            self.bout += len(data)
            lt.sendto(data, self.client)

    def error_received(self, exc):
        log.debug("%s: real %s:%s: %s", self.svc.key, self.real.host, self.real.port, exc)

    def connection_lost(self, exc):
        self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        svc = self.svc
        if svc.flows.get(self.key) is self:
            del svc.flows[self.key]
        if not self.ops:
            self.dest.unbind()
        if self.tmpl is not None:
            self.tmpl.table.release(self.tmpl, svc.dp.now())
        self.real.retire(self)
        if self.real.dest.available is False:
            svc.real_gone(self.real)

    def abort(self) -> None:
        if self.ut is not None:
            self.ut.close()
        self.finish()

    def check_timeout(self, now: float, t: Timeouts, connect_timeout: float) -> None:
        total = self.nin + self.nout
        if total != self.seen:
            self.seen = total
            self.since = now
        elif now - self.since >= t.udp:
            self.abort()


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, svc: _Service) -> None:
        self.svc = svc

    def connection_made(self, transport):
        self.svc.udp = transport
        self.svc.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data, addr):
        svc = self.svc
        ops = svc.state.ops
        if not ops:
            flow = svc.flows.get(addr)
            if flow is not None and not flow.done:
                flow.send(data)
                return
        dp = svc.dp
        now = dp.now()
        got = svc.schedule(_addr_int(addr[0]), addr[1], now)
        if got is None:
            dp.no_dest += 1
            return
        dest, tmpl = got
        real = dest.data
        real.c_conns += 1
        if ops:
            # one-packet scheduling: each datagram is its own connection, freed at once
            # (IP_VS_CONN_F_ONE_PACKET); the upstream socket is kept per client and real only
            # so replies find their way back
            dest.bind()
            dest.unbind()
            key = (addr, real.state.key)
            flow = svc.flows.get(key)
            if flow is None or flow.done:
                flow = self._open(svc, real, tmpl, addr, key, True)
            elif tmpl is not None:
                tmpl.table.release(tmpl, now)
            flow.send(data)
            return
        dest.bind()
        flow = self._open(svc, real, tmpl, addr, addr, False)
        flow.send(data)

    def _open(self, svc, real, tmpl, addr, key, ops) -> _UdpFlow:
        flow = _UdpFlow(svc, real, tmpl, addr, key, ops)
        svc.flows[key] = flow
        real.conns.add(flow)
        svc.dp.loop.create_task(self._connect(flow))
        return flow

    @staticmethod
    async def _connect(flow: _UdpFlow) -> None:
        dp = flow.svc.dp
        try:
            await dp.loop.create_datagram_endpoint(lambda: flow,
                                                   remote_addr=(flow.real.host, flow.real.port))
        except OSError as exc:
            log.debug("%s: UDP socket to %s:%s failed: %s", flow.svc.key, flow.real.host,
                      flow.real.port, exc)
            dp.connect_errors += 1
            flow.finish()

    def error_received(self, exc):
        log.debug("%s: %s", self.svc.key, exc)


# --------------------------------------------------------------------------- the data plane

class ProxyDataPlane(DataPlane):
    """See the module text. Construct inside a running event loop (or before `apply`), then
    `await apply(desired)` as often as the desired state changes.

    listen: service key -> (host, port) to listen on instead of the service's own address.
    proxy_protocol: "v1"/"v2" for every service, or a mapping service key -> "v1"/"v2".
    expire_nodest_conn / expire_quiescent_template: the IPVS sysctls of the same names.
    freebind: bind the VIP even before it is configured on an interface (IP_FREEBIND), so the
    balancer can start before the vip resource adds the address.
    """

    name = "proxy"

    def __init__(self, *, listen: Mapping[str, tuple[str, int]] | None = None,
                 timeouts: Timeouts = Timeouts(),
                 proxy_protocol: str | Mapping[str, str] | None = None,
                 expire_nodest_conn: bool = False, expire_quiescent_template: bool = False,
                 connect_timeout: float = 5.0, freebind: bool = True, backlog: int = 1024,
                 buffer_high: int = 256 * 1024,
                 clock: Callable[[], float] | None = None) -> None:
        self.listen = dict(listen or {})
        self.timeouts = timeouts
        self.proxy_protocol = proxy_protocol
        for v in ([proxy_protocol] if isinstance(proxy_protocol, str) else
                  (proxy_protocol or {}).values()):
            if v not in ("v1", "v2"):
                raise ValueError(f"proxy_protocol: expected v1 or v2, got {v!r}")
        self.expire_nodest_conn = expire_nodest_conn
        self.expire_quiescent_template = expire_quiescent_template
        self.connect_timeout = connect_timeout
        self.freebind = freebind
        self.backlog = backlog
        self.buffer_high = buffer_high
        self._clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.services: dict[str, _Service] = {}
        self.unsupported: dict[str, str] = {}  # service key -> why it is not served
        self.desired = DesiredState()
        self._sweeper: asyncio.Task | None = None
        self._tcp: _TcpEngine | None = None
        self._lock = asyncio.Lock()
        self.no_dest = 0  # connections/datagrams refused: no destination available
        self.connect_errors = 0  # real servers that refused or did not answer a connect
        self.connect_timeouts = 0  # of which: no answer within connect_timeout
        self.udp_dropped = 0

    def now(self) -> float:
        return self._clock() if self._clock is not None else self.loop.time()

    def listen_address(self, key: str) -> tuple[str, int] | None:
        """Where a service is served (host, port), after binding; None when it is not."""
        svc = self.services.get(key)
        if svc is None:
            return None
        if svc.listener is not None:
            return svc.listener.getsockname()[:2]
        if svc.udp is not None:
            return svc.udp.get_extra_info("sockname")[:2]
        return None

    # ------------------------------------------------------------------ apply

    async def apply(self, desired: DesiredState) -> None:
        async with self._lock:
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            if self._tcp is None:
                self._tcp = _TcpEngine(self)
            if self._sweeper is None:
                self._sweeper = self.loop.create_task(self._sweep())
            want = {s.key: s for s in desired.services}
            errors = []
            for key in [k for k in self.services if k not in want]:
                await self._drop_service(key)
            for key, st in want.items():
                svc = self.services.get(key)
                if st.fwmark is not None:
                    self.unsupported[key] = "fwmark services need the kernel data plane (nft)"
                    continue
                if svc is not None and self._bind_target(st) != self._bind_target(svc.state):
                    await self._drop_service(key)
                    svc = None
                if svc is None:
                    svc = _Service(self, st)
                    svc.pp = self._pp_for(key)
                    try:
                        await self._open(svc)
                    except OSError as exc:
                        host, port = self._bind_target(st)
                        errors.append(f"{key}: cannot listen on {host}:{port}: {exc.strerror or exc}")
                        self.unsupported[key] = f"cannot listen: {exc.strerror or exc}"
                        continue
                    self.unsupported.pop(key, None)
                    self.services[key] = svc
                    svc.sync_reals(st.installed)
                else:
                    svc.pp = self._pp_for(key)
                    svc.update(st)
            self.desired = desired
            if errors:
                raise DataPlaneError("; ".join(errors))

    def _pp_for(self, key: str) -> str | None:
        pp = self.proxy_protocol
        if pp is None or isinstance(pp, str):
            return pp
        return pp.get(key)

    def _bind_target(self, st: ServiceState) -> tuple[str, int]:
        return self.listen.get(st.key) or (st.address, st.port)

    async def _open(self, svc: _Service) -> None:
        host, port = self._bind_target(svc.state)
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        kind = socket.SOCK_STREAM if svc.proto == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(fam, kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.freebind:
                level = socket.IPPROTO_IPV6 if fam == socket.AF_INET6 else socket.IPPROTO_IP
                try:
                    sock.setsockopt(level, IP_FREEBIND, 1)
                except OSError:
                    pass
            if fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
            sock.setblocking(False)
            if kind == socket.SOCK_STREAM:
                sock.listen(self.backlog)
                svc.listener = sock
                self._tcp.listen(svc, sock)
            else:
                await self.loop.create_datagram_endpoint(lambda: _UdpListener(svc), sock=sock)
        except BaseException:
            sock.close()
            raise

    async def _drop_service(self, key: str) -> None:
        svc = self.services.pop(key)
        if svc.listener is not None:
            self._tcp.unlisten(svc.listener)
            svc.listener.close()
            svc.listener = None
        if svc.udp is not None:
            svc.udp.close()
            svc.udp = None
        for real in list(svc.all_reals()):
            for c in list(real.conns):
                c.abort()

    # ------------------------------------------------------------------ stats

    def stats(self) -> BalancerStats:
        out = {}
        for key, svc in self.services.items():
            reals = {}
            for rkey, real in svc.reals.items():
                d = real.dest
                reals[rkey] = RealStats(counters=real.counters(), rates=real.est.rates(),
                                        active=d.active, inactive=d.inactive, persist=d.persist)
            out[key] = ServiceStats(counters=svc.counters(), rates=svc.est.rates(), reals=reals)
        return BalancerStats(services=out)

    # ------------------------------------------------------------------ housekeeping

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                self.tick(self.now())
            except Exception:  # never let housekeeping die
                log.exception("proxy housekeeping failed")

    def tick(self, now: float) -> None:
        """Timeouts, template expiry, scheduler caches, rate estimation."""
        t = self.timeouts
        for svc in list(self.services.values()):
            for real in list(svc.all_reals()):
                for c in list(real.conns):
                    c.check_timeout(now, t, self.connect_timeout)
                real.est.sample(real.counters(), now)
            if svc.persist is not None:
                svc.persist.expire(now)
            svc.sched.expire(now)
            svc.est.sample(svc.counters(), now)

    async def close(self) -> None:
        async with self._lock:
            if self._sweeper is not None:
                self._sweeper.cancel()
                try:
                    await self._sweeper
                except asyncio.CancelledError:
                    pass
                self._sweeper = None
            for key in list(self.services):
                await self._drop_service(key)
            if self._tcp is not None:
                self._tcp.close()
                self._tcp = None
            self.desired = DesiredState()


# --------------------------------------------------------------------------- standalone runner

def _parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"{what} {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def standalone_desired(args) -> DesiredState:
    """The desired state of `python -m hadirector.dataplane.proxy` from its options."""
    from ..balancer.state import build_desired
    from ..config.model import Balancer

    if args.config:
        from ..config import ConfigError, load_config
        try:
            loaded = load_config(path=args.config, need_node=False)
        except ConfigError as exc:
            raise SystemExit("\n".join(str(p) for p in exc.problems)) from None
        return build_desired(loaded.config.balancer)
    if not args.service or not args.real:
        raise SystemExit("give -c CONFIG, or --service PROTO:HOST:PORT and at least one --real")
    proto, _, rest = args.service.partition(":")
    if proto not in ("tcp", "udp"):
        raise SystemExit(f"--service {args.service!r}: expected tcp:HOST:PORT or udp:HOST:PORT")
    host, port = _parse_hostport(rest, "--service")
    reals = []
    for r in args.real:
        parts = r.rsplit(":", 2) if r.count(":") >= 2 and not r.startswith("[") else None
        if parts and len(parts) == 3 and parts[2].isdigit() and parts[1].isdigit():
            (rh, rp), w = _parse_hostport(f"{parts[0]}:{parts[1]}", "--real"), int(parts[2])
        else:
            (rh, rp), w = _parse_hostport(r, "--real"), 1
        reals.append({"address": rh, "port": rp, "weight": w, "method": "masq"})
    v = {"address": host, "port": port, "protocol": proto, "scheduler": args.scheduler,
         "reals": reals}
    if args.persistent:
        v["persistent"] = args.persistent
    return build_desired(Balancer(virtual=[v]))


async def _run_standalone(args) -> None:
    from ..daemon.control import ControlServer
    from ..render.lvs import lvs_snapshot

    desired = standalone_desired(args)
    dp = ProxyDataPlane(proxy_protocol=args.proxy_protocol)
    await dp.apply(desired)
    for key in desired.keys:
        where = dp.listen_address(key)
        print(f"proxy: {key} listening on {where}" if where else f"proxy: {key} not served: "
              f"{dp.unsupported.get(key)}", flush=True)
    control = None
    if args.state_dir:
        async def lvs(_req):
            return lvs_snapshot(dp.desired, dp.stats())
        control = ControlServer(args.state_dir, {"lvs": lvs})
        await control.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if control is not None:
            await control.close()
        await dp.close()


def main(argv: list[str] | None = None) -> int:
    """Run the proxy on its own (benchmarks, trying a configuration): no cluster, every real up."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m hadirector.dataplane.proxy",
                                description="Run the userspace proxy data plane alone.")
    p.add_argument("-c", "--config", help="native TOML configuration: serve its [balancer]")
    p.add_argument("--service", help="PROTO:HOST:PORT, e.g. tcp:127.0.0.1:8080")
    p.add_argument("--real", action="append", default=[], help="HOST:PORT[:WEIGHT] (repeat)")
    p.add_argument("--scheduler", default="wrr")
    p.add_argument("--persistent", type=int, default=0, help="persistence timeout, seconds")
    p.add_argument("--proxy-protocol", choices=("v1", "v2"), default=None)
    p.add_argument("--state-dir", help="serve `hadirector lvs --state-dir DIR` from here")
    p.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    runner = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            pass
    runner(_run_standalone(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
