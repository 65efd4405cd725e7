"""The proxy's UDP relay: one flow per client address and port, as IPVS keeps one connection
entry per UDP flow, each with a connected socket towards its real (asyncio datagram transports).

Every flow counts as inactive, as in IPVS. A flow idle for the `udp` timeout ends. One-packet
scheduling (ipvsadm -o, IP_VS_CONN_F_ONE_PACKET) schedules every datagram on its own; the upstream
socket is then kept per client and real only so replies find their way back. With the PROXY
protocol (v2), each datagram to the real carries its own header.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ...balancer.schedulers import addr_int
from .proxy_protocol import proxy_header
from .table import Real, Timeouts

if TYPE_CHECKING:
    from .plane import Served

log = logging.getLogger(__name__)

MAX_PENDING_UDP = 64  # datagrams held per flow while its upstream socket opens


class UdpFlow(asyncio.DatagramProtocol):
    """One client's flow to one real: a connected UDP socket towards the real."""

    __slots__ = ("svc", "real", "dest", "tmpl", "client", "key", "ut", "pending", "nin", "bin",
                 "nout", "bout", "seen", "since", "done", "ops")

    def __init__(self, svc: "Served", real: Real, tmpl, client, key, ops: bool) -> None:
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


class UdpListener(asyncio.DatagramProtocol):
    def __init__(self, svc: "Served") -> None:
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
        got = svc.schedule(addr_int(addr[0]), addr[1], now)
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

    def _open(self, svc, real, tmpl, addr, key, ops) -> UdpFlow:
        flow = UdpFlow(svc, real, tmpl, addr, key, ops)
        svc.flows[key] = flow
        real.conns.add(flow)
        svc.dp.loop.create_task(self._connect(flow))
        return flow

    @staticmethod
    async def _connect(flow: UdpFlow) -> None:
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
