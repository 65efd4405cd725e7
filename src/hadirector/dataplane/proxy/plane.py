"""The proxy data plane: the table (table.py) served by the TCP (tcp.py) and UDP (udp.py) relays.

`await apply(desired)` brings the listeners and the table to the desired state: a new service is
bound (TCP: a listener on the relay's epoll set; UDP: a datagram endpoint), a changed one updated
in place (its connections, counters and scheduler position stay), a removed one closed with its
connections reset. What it cannot serve it reports in `unserved` (base.Unserved): services whose
protocol the proxy lacks (fwmark) as UNSUPPORTED, addresses it could not bind as CANNOT_LISTEN
(and apply then raises DataPlaneError naming them). A sweep every second runs `tick(now)`:
connection timeouts, template expiry, scheduler caches, rate estimation.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import MappingProxyType
from typing import Callable, Mapping

from ...balancer.schedulers import SCHEDULERS
from ...balancer.state import DesiredState, RealState, ServiceState
from ..base import (BalancerStats, Capabilities, DataPlane, DataPlaneError, RealStats,
                    ServiceStats, Unserved, UnservedKind)
from .proxy_protocol import VERSIONS
from .table import Service, Timeouts
from .tcp import TcpRelay
from .udp import UdpListener

log = logging.getLogger(__name__)

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
SWEEP_INTERVAL = 1.0

# What the proxy can do. It relays every connection itself, so gate (direct routing) and ipip
# (tunnel) reals are reached like masq ones, on any port; the reals see the proxy's address
# (send the PROXY protocol to pass the client's). Firewall marks live in the kernel's packet
# path, which a userspace proxy never sees.
CAPABILITIES = Capabilities(
    kind="proxy", protocols=frozenset({"tcp", "udp"}), schedulers=frozenset(SCHEDULERS),
    methods=frozenset({"masq", "local"}), relayed_methods=frozenset({"gate", "ipip"}),
    gate_fwmark=False, mixed_gate_nat=True, gate_port_change=True, ops=True,
    proxy_protocol=True, needs_root=False)


class Served(Service):
    """A table service as the plane serves it: where it listens, and the relays' state."""

    def __init__(self, dp: "ProxyDataPlane", state: ServiceState) -> None:
        super().__init__(state, expire_nodest_conn=dp.expire_nodest_conn,
                         expire_quiescent_template=dp.expire_quiescent_template)
        self.dp = dp
        self.listener: socket.socket | None = None  # TCP: watched by the plane's TcpRelay
        self.udp: asyncio.DatagramTransport | None = None
        self.flows: dict = {}  # UDP: client address (or (address, real) with ops) -> UdpFlow
        self.pp: str | None = None  # PROXY protocol version sent to the reals
        self.local: tuple[str, int] | None = None  # where a UDP service listens


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
    capabilities = CAPABILITIES

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
            if v not in VERSIONS:
                raise ValueError(f"proxy_protocol: expected v1 or v2, got {v!r}")
        self.expire_nodest_conn = expire_nodest_conn
        self.expire_quiescent_template = expire_quiescent_template
        self.connect_timeout = connect_timeout
        self.freebind = freebind
        self.backlog = backlog
        self.buffer_high = buffer_high
        self._clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.services: dict[str, Served] = {}
        self._unserved: dict[str, Unserved] = {}
        self.desired = DesiredState()
        self._sweeper: asyncio.Task | None = None
        self._tcp: TcpRelay | None = None
        self._lock = asyncio.Lock()
        self.no_dest = 0  # connections/datagrams refused: no destination available
        self.connect_errors = 0  # real servers that refused or did not answer a connect
        self.connect_timeouts = 0  # of which: no answer within connect_timeout
        self.udp_dropped = 0
        # flow sync (daemon/flowsync.py): persistence templates follow the VIP
        self.persist_listener: Callable[[str, str, int], None] | None = None  # (set, client net, ms)
        self.preload: Callable[[], list] | None = None
        self.preloaded = 0
        self.applies = 0

    @property
    def unserved(self) -> Mapping[str, Unserved]:
        return MappingProxyType(self._unserved)

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
                self._tcp = TcpRelay(self)
            if self._sweeper is None:
                self._sweeper = self.loop.create_task(self._sweep())
            want = {s.key: s for s in desired.services}
            errors = []
            for key in [k for k in self.services if k not in want]:
                await self._drop_service(key)
            for key in [k for k in self._unserved if k not in want]:
                del self._unserved[key]
            for key, st in want.items():
                svc = self.services.get(key)
                if st.protocol not in CAPABILITIES.protocols:
                    self._unserved[key] = Unserved(key, UnservedKind.UNSUPPORTED,
                                                   "fwmark services need the kernel data plane (nft)"
                                                   if st.protocol == "fwm" else
                                                   f"the proxy does not serve {st.protocol}")
                    continue
                if svc is not None and self._bind_target(st) != self._bind_target(svc.state):
                    await self._drop_service(key)
                    svc = None
                if svc is None:
                    svc = Served(self, st)
                    svc.pp = self._pp_for(key)
                    try:
                        await self._open(svc)
                    except OSError as exc:
                        host, port = self._bind_target(st)
                        where = f"{host}:{port}: {exc.strerror or exc}"
                        errors.append(f"{key}: cannot listen on {where}")
                        self._unserved[key] = Unserved(key, UnservedKind.CANNOT_LISTEN, where)
                        continue
                    self._unserved.pop(key, None)
                    self.services[key] = svc
                    svc.sync_reals(st.installed)
                    self._hook_persistence(svc)
                else:
                    svc.pp = self._pp_for(key)
                    svc.update(st)
                    self._hook_persistence(svc)
            if self.applies == 0 and self.preload is not None:
                self._restore_templates(self.preload())
            self.applies += 1
            self.desired = desired
            if errors:
                raise DataPlaneError("; ".join(errors))

    # ------------------------------------------------------------------ flow sync
    def _hook_persistence(self, svc: "Served") -> None:
        if svc.persist is not None and self.persist_listener is not None:
            listener, ipv6 = self.persist_listener, svc.state.ipv6

            def changed(k: int, dest, expires: float) -> None:
                if dest.data is not None:
                    listener(proxy_set(svc.key, dest.data.state), int_addr(k, ipv6),
                             int((expires - self.now()) * 1000))
            svc.persist.on_change = changed

    def _restore_templates(self, entries: list) -> None:
        """Templates synced from the active (flow sync): `proxy - persist_<S>_<R>` elements."""
        from ...balancer.schedulers import addr_int
        from ..nft_render import real_tag, tag
        where = {}
        for svc in self.services.values():
            if svc.persist is None:
                continue
            for real in svc.reals.values():
                where[f"persist_{tag(svc.key)}_{real_tag(real.state)}"] = (svc, real)
        now = self.now()
        for elem, left in entries:
            hit = where.get(elem.set.rsplit(" ", 1)[-1])
            if hit is None or left <= 0:
                continue
            svc, real = hit
            svc.persist.restore(addr_int(elem.addr), real.dest, now + left / 1000)
            self.preloaded += 1

    async def sync_elements(self) -> list:
        """Every persistence template as flow-sync elements: [(Elem, ms left)]."""
        from ...balancer.flowsync import Elem
        from ..nft_render import tag
        out = []
        now = self.now()
        for svc in self.services.values():
            if svc.persist is None:
                continue
            for t in list(svc.persist.templates.values()):
                real = t.dest.data
                left = int((t.expires - now) * 1000) if t.controlled == 0 else int(svc.persist.timeout * 1000)
                if left > 0 and real is not None:
                    out.append((Elem(proxy_set(svc.key, real.state), int_addr(t.key, svc.state.ipv6), -1), left))
        return out

    async def set_elements(self) -> list:
        """`lvs -c`: the proxy's only connection-table entries that outlive a connection."""
        return await self.sync_elements()

    def sync_sets(self) -> dict:
        return {}

    def _pp_for(self, key: str) -> str | None:
        pp = self.proxy_protocol
        if pp is None or isinstance(pp, str):
            return pp
        return pp.get(key)

    def _bind_target(self, st: ServiceState) -> tuple[str, int]:
        return self.listen.get(st.key) or (st.address, st.port)

    async def _open(self, svc: Served) -> None:
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
                await self.loop.create_datagram_endpoint(lambda: UdpListener(svc), sock=sock)
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
            svc.tick(now)

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
            self._unserved.clear()
            self.desired = DesiredState()


def proxy_set(service_key: str, real: RealState) -> str:
    """The flow-sync name of a proxy service's persistence templates for one real, shaped like
    the nft set names ("family table set") so `lvs -c` names them alike."""
    from ..nft_render import real_tag, tag
    return f"proxy - persist_{tag(service_key)}_{real_tag(real)}"


def int_addr(value: int, ipv6: bool) -> str:
    import ipaddress
    return str(ipaddress.IPv6Address(value) if ipv6 else ipaddress.IPv4Address(value))
