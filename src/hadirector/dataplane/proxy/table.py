"""The proxy's in-memory IPVS table: services, their reals, scheduling, persistence use.

How it works: one `Service` per virtual service of the desired state keeps what the kernel keeps
for it (net/netfilter/ipvs/ip_vs_ctl.c): the destination list in the kernel's order (newest first),
the scheduler (balancer/schedulers.py) and the persistence templates (balancer/persistence.py).
`sync_reals(installed)` brings the list to the desired reals one change at a time, as ipvsadm
would make them, so the scheduler sees the same add/del/update sequence the kernel's does:
- weight 0 (quiescent) stops new connections; open ones go on;
- a real removed from the table keeps its open connections (it waits in `trash`) unless
  `expire_nodest_conn` is set (the IPVS sysctl), which aborts them; re-adding a removed real that
  still has connections revives it with its counters, as ip_vs_trash_get_dest does;
- persistence (ipvsadm -p/-M) goes through a PersistenceTable; a change of its settings drops the
  old templates (their connections keep running and release them later).
`schedule(caddr, cport, now)` is ip_vs_schedule: the (dest, template) for a new connection.

Nothing here opens a socket or reads a clock: the relays (tcp.py, udp.py) own the connections and
pass `now`. A connection, for this table, is any object with the counters `nin`, `nout`, `bin`,
`bout` (reads and bytes, client -> real and back) and an `abort()`; each `Real.conns` holds the
live ones, and a relay calls `Real.retire(conn)` and then `Service.real_gone(real)` when one ends.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ...balancer.persistence import PersistenceTable
from ...balancer.schedulers import Dest, Scheduler, addr_int, make_scheduler, sched_flag_bits
from ...balancer.state import RealState, ServiceState
from ..base import Counters, RateEstimator


@dataclass(frozen=True, slots=True)
class Timeouts:
    """`ipvsadm --set tcp tcpfin udp`, seconds; the defaults are IPVS's (15 min, 2 min, 5 min)."""

    tcp: float = 900.0
    tcpfin: float = 120.0
    udp: float = 300.0


class Real:
    """One real server of one service: its destination and the connections through it."""

    __slots__ = ("state", "host", "port", "family", "sockaddr", "dest", "conns", "c_conns",
                 "c_inpkts", "c_outpkts", "c_inbytes", "c_outbytes", "est")

    def __init__(self, state: RealState) -> None:
        self.state = state
        self.host = state.address
        self.port = state.port
        v6 = ":" in state.address
        self.family = socket.AF_INET6 if v6 else socket.AF_INET
        self.sockaddr = (state.address, state.port, 0, 0) if v6 else (state.address, state.port)
        self.dest = Dest(state.key, addr_int(state.address), state.port, state.weight,
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
        """Connection `c` ended: fold its counters into this real's."""
        self.conns.discard(c)
        self.c_inpkts += c.nin
        self.c_outpkts += c.nout
        self.c_inbytes += c.bin
        self.c_outbytes += c.bout


class Service:
    """One virtual service of the table; see the module text.

    expire_nodest_conn / expire_quiescent_template: the IPVS sysctls of the same names."""

    def __init__(self, state: ServiceState, *, expire_nodest_conn: bool = False,
                 expire_quiescent_template: bool = False) -> None:
        self.state = state
        self.key = state.key
        self.proto = state.protocol
        self.expire_nodest_conn = expire_nodest_conn
        self.expire_quiescent_template = expire_quiescent_template
        self.sched: Scheduler = make_scheduler(state.scheduler, sched_flag_bits(state.sched_flags))
        self.uses_client = True  # set by _set_persistence: schedule() needs the client address
        self.dests: list[Dest] = []  # kernel order: newest first
        self.reals: dict[tuple[str, int], Real] = {}
        self.trash: dict[tuple[str, int], Real] = {}  # removed, connections still open
        self.persist: PersistenceTable | None = None
        self.retired = Counters()
        self.est = RateEstimator()
        self.vaddr = addr_int(state.address) if state.address else 0
        self.vport = state.port or 0
        self._set_persistence(state)

    def _set_persistence(self, state: ServiceState) -> None:
        """(Re)build the template table when persistence settings change; old templates go."""
        if self.persist is not None:
            self.persist.clear()
            self.persist = None
        self.uses_client = state.persistent_ms is not None or state.scheduler in ("sh", "mh")
        if state.persistent_ms is not None:
            prefix = state.netmask if state.netmask is not None else (128 if state.ipv6 else 32)
            self.persist = PersistenceTable(state.persistent_ms / 1000, prefix, state.ipv6,
                                            self.expire_quiescent_template)

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
            real = Real(r)
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
        if self.expire_nodest_conn:
            for c in list(real.conns):
                c.abort()
        if real.conns:
            self.trash[key] = real
        else:
            self.retired = self.retired + real.counters()

    def real_gone(self, real: Real) -> None:
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

    # ------------------------------------------------------------------ bookkeeping

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

    def tick(self, now: float) -> None:
        """Template expiry, scheduler caches, rate estimation (connection timeouts are the
        relays')."""
        for real in self.all_reals():
            real.est.sample(real.counters(), now)
        if self.persist is not None:
            self.persist.expire(now)
        self.sched.expire(now)
        self.est.sample(self.counters(), now)
