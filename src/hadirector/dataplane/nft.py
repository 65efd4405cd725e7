"""The nftables data plane (root): NAT and direct routing in tables of our own.

How it works. `apply(desired)` looks up the facts the rules need (the director's addresses, the
device each direct-routing VIP arrives on, each gate real's device and MAC from the neighbour
table, resolving it first when missing), renders the ruleset (nft_render.render, pure) and
commits the difference to the kernel as one libnftables JSON transaction (nft_render.plan,
from what the last apply installed): refill the chains whose rules changed, keep the flow and
persistence sets and the counters that are still wanted. Conntrack keeps NAT connections and
the flow sets keep direct-routed ones, so an apply never moves or breaks an open connection.
We only ever list, change or delete `ip|ip6 hadirector` and `netdev hadirector_<dev>`;
`close()` deletes exactly those.

A background task (started by the first apply) every `stats_interval` seconds reads the named
counters (connections, packets, bytes per real), counts connections (conntrack for NAT, the flow
sets for direct routing) and feeds the rate estimators; for lc, wlc, sed, nq and ovf, and for
upper/lower thresholds, it turns the counts into weights (`adaptive_weights`) and re-applies when
they change. That is an approximation of IPVS, which decides per connection: here the choice is
weighted numgen between two measurements. It also re-reads the gate reals' MACs and re-applies
when one changed (a replaced server).

Blocking work (libnftables, netlink reads of addresses, routes and neighbours (netfacts.py) and
of tables, counters and set sizes (nft_read.py), conntrack) runs in one worker thread, which
lives in the network namespace given as `netns` (tests) or in ours (the daemon); its sockets
are made there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from dataclasses import replace
from typing import Any, Callable, Mapping

from ..balancer.schedulers import Dest, make_scheduler, sched_flag_bits
from ..balancer.state import DesiredState, RealState, ServiceState
from ..net.netns import NetnsWorker
from .base import (BalancerStats, Counters, DataPlane, DataPlaneError, RateEstimator, RealStats,
                   ServiceStats)
from .libnft import Nft, NftError
from .netfacts import NetFacts
from .nft_render import (CAPABILITIES, CounterRef, Existing, Link, NftOptions, RenderEnv,
                         RenderError, Rendered, existing_from_listing, existing_from_rendered,
                         install_commands, is_ours, plan, render)

log = logging.getLogger(__name__)

ADAPTIVE = ("lc", "wlc", "sed", "nq", "ovf")
TCP_ESTABLISHED = 3  # enum tcp_conntrack


class NftDataPlane(DataPlane):
    """The kernel data plane.

    netns: run in this named network namespace (None: the current one).
    options: NftOptions (table name, snat none|masquerade|ADDRESS, DR flow timeouts, sizes...).
    ingress: VIP -> device overrides for direct routing (default: the device holding the VIP).
    stats_interval: seconds between counter reads (and adaptive weight updates); 0 = never.
    count_connections: count active/inactive connections (conntrack, flow sets) for stats();
        always done for services that need it (lc family, thresholds).
    """

    name = "nft"
    capabilities = CAPABILITIES

    def __init__(self, *, netns: str | None = None, options: NftOptions | None = None,
                 ingress: Mapping[str, str] | None = None, stats_interval: float = 2.0,
                 count_connections: bool = True, resolve_timeout: float = 3.0,
                 clock: Callable[[], float] = time.monotonic):
        self.options = options or NftOptions()
        self.ingress = dict(ingress or {})
        self.stats_interval = stats_interval
        self.count_connections = count_connections
        self.resolve_timeout = resolve_timeout
        self.clock = clock
        self._worker = NetnsWorker(netns)
        self.netns = netns
        self._nft: Nft | None = None
        self._facts: NetFacts | None = None
        self._desired = DesiredState()
        self._rendered: Rendered | None = None
        self._installed: list[dict] | None = None
        self._held: dict[tuple[str, str], Existing] = {}  # our tables as we last installed them
        self._neigh_cache: dict[tuple[str, str], str] | None = None
        self._unresolved: dict[str, str] = {}  # gate real -> device, MAC unknown
        self._env = RenderEnv()
        self._weights: dict[tuple[str, tuple[str, int]], int] = {}
        self._stats = BalancerStats()
        self._est: dict[Any, RateEstimator] = {}
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.warnings: list[str] = []
        self.applies = 0  # transactions committed (tests, status)
        self.replans = 0  # transactions planned from what we installed that the kernel refused
        # flow sync (daemon/flowsync.py): entries a backup holds, loaded into the sets in the
        # same transaction that creates them (the first apply after a takeover)
        self.preload: Callable[[], list] | None = None
        self.preloaded = 0  # elements loaded that way
        self.preload_ms: int | None = None  # how long that transaction took
        try:
            self._worker.call(self._init_nft)
        except BaseException:
            self._worker.close()
            raise

    def _init_nft(self) -> None:
        try:
            self._nft = Nft()
        except NftError as exc:
            raise DataPlaneError(f"nft data plane: {exc}") from None
        try:
            self._facts = NetFacts()  # here: its socket lives in the worker's namespace
        except BaseException:
            self._close_nft()
            raise

    # ------------------------------------------------------------------ DataPlane
    async def apply(self, desired: DesiredState) -> None:
        if self._closed:
            raise DataPlaneError("nft data plane is closed")
        async with self._lock:
            self._desired = desired
            await self._worker.acall(self._apply_sync, desired, True)
        if self._task is None and self.stats_interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._background(), name="nft-stats")

    def stats(self) -> BalancerStats:
        return self._stats

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            async with self._lock:
                await self._worker.acall(self._remove_sync)
        finally:
            self._worker.call(self._close_nft)
            self._worker.close()

    @staticmethod
    def purge(netns: str | None = None, table: str = NftOptions.table) -> list[tuple[str, str]]:
        """Delete tables a previous run left behind (e.g. after a crash), without an instance:
        `ip|ip6 <table>` and `netdev <table>_*` only. Returns the tables deleted."""
        def work() -> list[tuple[str, str]]:
            nft = Nft()
            try:
                ours = [(f, n) for f, n in nft.tables() if is_ours(f, n, table)]
                if ours:
                    nft.run([{"delete": {"table": {"family": f, "name": n}}} for f, n in ours])
                return ours
            finally:
                nft.close()
        with NetnsWorker(netns) as w:
            return w.call(work)

    def _close_nft(self) -> None:
        try:
            if self._facts is not None:
                self._facts.close()
                self._facts = None
        finally:
            if self._nft is not None:
                self._nft.close()

    async def refresh(self) -> None:
        """Read counters and connection counts now (what the background task does)."""
        async with self._lock:
            await self._worker.acall(self._refresh_sync)

    def ruleset(self) -> list[dict]:
        """Our tables as the kernel holds them (JSON objects, with set elements)."""
        def get() -> list[dict]:
            out = []
            for fam, name in self._our_tables():
                out += self._nft.list({"table": {"family": fam, "name": name}}, terse=False)
            return out
        return self._worker.call(get)

    # ------------------------------------------------------------------ worker-thread side
    def _our_tables(self) -> list[tuple[str, str]]:
        assert self._nft is not None
        return [(f, n) for f, n in self._nft.tables() if is_ours(f, n, self.options.table)]

    def _apply_sync(self, desired: DesiredState, resolve: bool) -> None:
        assert self._nft is not None
        env, unresolved = self._gather_env(desired, resolve)
        try:
            rendered = render(_without(desired, unresolved), env, self.options)
        except RenderError as exc:  # the configuration, not the moment: a retry fails the same way
            raise DataPlaneError(str(exc), transient=exc.transient) from None
        self._commit(rendered, env)

    def _commit(self, rendered: Rendered, env: RenderEnv) -> None:
        assert self._nft is not None
        wanted = install_commands(rendered)
        tables = self._our_tables()
        if wanted == self._installed and set(tables) == set(rendered.tables):
            self._rendered, self._env = rendered, env
            return
        loaded = self.preloaded
        try:
            # the tables we installed last are planned from memory (no listing); a kernel that
            # refuses that plan (someone changed our tables) gets one planned from a listing
            try:
                self._transaction(rendered, tables, self._held)
            except NftError as exc:
                if not any(k in self._held for k in tables):
                    raise
                log.warning("nftables refused the transaction planned from our last one (%s): our "
                            "tables were changed by someone else; planning from a listing", exc.message)
                self.replans += 1
                self.preloaded = loaded
                self._transaction(rendered, tables, {})
        except NftError as exc:
            self._held = {}
            raise DataPlaneError(f"nftables refused the ruleset: {exc.message}") from None
        self.applies += 1
        for w in rendered.warnings:
            if w not in self.warnings:
                log.warning("%s", w)
                self.warnings.append(w)
        self._rendered, self._env, self._installed = rendered, env, wanted
        self._held = {k: existing_from_rendered(t) for k, t in rendered.tables.items()}

    def _transaction(self, rendered: Rendered, tables: list[tuple[str, str]],
                     held: Mapping[tuple[str, str], Existing]) -> None:
        """Plan from what the kernel holds (`held` for tables we know, a listing for the others)
        to `rendered` and run it as one transaction."""
        assert self._nft is not None
        existing: dict[tuple[str, str], Existing] = {}
        for fam, name in tables:
            if (fam, name) in held:
                existing[(fam, name)] = held[(fam, name)]
                continue
            items = self._nft.list({"table": {"family": fam, "name": name}}, terse=True)
            existing[(fam, name)] = existing_from_listing(items, fam, name)
        cmds = plan(existing, rendered)
        t_load = time.monotonic()
        loaded = self.preloaded
        if self.preload is not None and cmds:
            cmds += self._preload_commands(rendered, existing)
        if cmds:
            self._nft.run(cmds)
        if self.preloaded != loaded:
            self.preload_ms = int((time.monotonic() - t_load) * 1000)

    def _preload_commands(self, rendered: Rendered, existing: Mapping) -> list[dict]:
        """Add elements for the synced entries of sets this transaction creates (a set the kernel
        already has keeps its own, fresher memory)."""
        from ..balancer.flowsync import to_nft_elements
        timeouts: dict[str, int] = {}
        for ss in rendered.sync.values():
            for name, ms in ((ss.flow, ss.flow_timeout), (ss.fin, ss.fin_timeout),
                             (ss.persist, ss.persist_timeout)):
                if name is None:
                    continue
                fam, table, sname = name.split(" ")
                ex = existing.get((fam, table))
                if ex is None or sname not in ex.sets:
                    timeouts[name] = ms // 1000
        entries = self.preload() if timeouts else []
        cmds = to_nft_elements(entries, timeouts)
        n = sum(len(c["add"]["element"]["elem"]) for c in cmds)
        self.preloaded += n
        log.info("flow sync: %d synced entries (of %d) go into %d new sets", n, len(entries), len(timeouts))
        return cmds

    def sync_sets(self) -> dict:
        """The installed ruleset's flow-sync sets (nft_render.Rendered.sync)."""
        return dict(self._rendered.sync) if self._rendered is not None else {}

    async def sync_elements(self) -> list:
        """Every element of the flow-sync sets as the kernel holds them now: [(Elem, ms left)]
        (a snapshot for a backup; the JSON API gives whole seconds)."""
        def names() -> list:
            out = []
            for ss in (self._rendered.sync.values() if self._rendered is not None else ()):
                out += [(n, ms) for n, ms in ((ss.flow, ss.flow_timeout), (ss.fin, ss.fin_timeout),
                                              (ss.persist, ss.persist_timeout)) if n is not None]
            return out
        return await self._worker.acall(lambda: self._elements(names()))

    async def set_elements(self) -> list:
        """Every element of every flow, closing and persistence set (`lvs -c`): [(Elem, ms left)]."""
        def names() -> list:
            r = self._rendered
            if r is None:
                return []
            return [(f"{f} {t} {n}", 0) for sets in (r.flow_sets, r.closing_sets, r.persist_sets)
                    for (f, t, n) in sets]
        return await self._worker.acall(lambda: self._elements(names()))

    def _elements(self, names: list) -> list:
        from ..balancer.flowsync import Elem
        out: list = []
        if self._nft is None:
            return out
        for name, ms in names:
            fam, table, sname = name.split(" ")
            try:
                items = self._nft.list({"set": {"family": fam, "table": table, "name": sname}}, terse=False)
            except NftError:
                continue
            for it in items:
                st = it.get("set") or {}
                for el in st.get("elem", []) or []:
                    left = ms or 1000 * int(st.get("timeout", 0))
                    if isinstance(el, dict) and "elem" in el:
                        left = 1000 * el["elem"].get("expires", left // 1000)
                        el = el["elem"]["val"]
                    if isinstance(el, dict) and "concat" in el:
                        out.append((Elem(name, str(el["concat"][0]), int(el["concat"][1])), left))
                    elif isinstance(el, str):
                        out.append((Elem(name, el, -1), left))
        return out

    def _remove_sync(self) -> None:
        assert self._nft is not None
        tables = self._our_tables()
        if tables:
            self._nft.run([{"delete": {"table": {"family": f, "name": n}}} for f, n in tables])
        self._installed = None
        self._held = {}

    # facts -------------------------------------------------------------------------------
    def _gather_env(self, desired: DesiredState, resolve: bool) -> tuple[RenderEnv, set[str]]:
        """The facts for render(), and the gate reals whose MAC is unknown (left out)."""
        assert self._facts is not None
        self._facts.fresh()
        gated = [svc for svc in desired.services if svc.address is not None
                 and any(r.method == "gate" for r in svc.installed)]
        addrs = self._facts.addresses(with_links=bool(gated))
        local = addrs.local
        vip_devs: dict[str, str] = {}
        devs: dict[str, str] = {}  # gate real -> device toward it
        for svc in gated:
            gate = [r for r in svc.installed if r.method == "gate" and r.address not in local
                    and not ipaddress.ip_address(r.address).is_loopback]
            if not gate:
                continue
            vip_devs[svc.address] = self._vip_dev(svc, addrs.dev)  # type: ignore[index]
            for r in gate:
                if r.address not in devs:
                    devs[r.address] = self._real_dev(svc, r)
        links, unresolved = self._resolve_all(devs, self.resolve_timeout if resolve else 0.0)
        return (RenderEnv(links=links, dev_macs=addrs.macs, vip_devs=vip_devs,
                          local_addrs=local, weights=dict(self._weights)), unresolved)

    def _vip_dev(self, svc: ServiceState, addr_dev: Mapping[str, str]) -> str:
        assert self._facts is not None
        vip = svc.address or ""
        if vip in self.ingress:
            return self.ingress[vip]
        dev = addr_dev.get(vip)
        if dev and dev != "lo":
            return dev
        rt = self._facts.route(vip)
        if rt.dev and rt.dev != "lo":
            return rt.dev
        why = f" (route get: {rt.error})" if rt.error else ""
        raise DataPlaneError(f"{svc.key}: cannot tell which device VIP {vip} arrives on{why}; add it "
                             "to an interface or pass ingress={VIP: DEVICE}")

    def _real_dev(self, svc: ServiceState, r: RealState) -> str:
        assert self._facts is not None
        rt = self._facts.route(r.address)
        if not rt.dev:
            why = f" ({rt.error})" if rt.error else ""
            raise DataPlaneError(f"{svc.key}: no route to gate real {r.address}{why}")
        if rt.gateway:
            raise DataPlaneError(f"{svc.key}: gate real {r.address} is behind router {rt.gateway}; "
                                 "direct routing needs the real on a directly connected network")
        return rt.dev

    def _resolve_all(self, devs: Mapping[str, str], timeout: float) -> tuple[dict[str, Link], set[str]]:
        """Each gate real's MAC from the neighbour table. Missing ones are provoked (a UDP
        datagram to the discard port makes the kernel ARP/ND) and waited for, together, up to
        `timeout`. A real that stays unresolved keeps its last known MAC, or is left out of the
        ruleset (as if down) and retried by the background task."""
        links: dict[str, Link] = {}
        self._neigh_cache = None
        deadline = time.monotonic() + timeout
        missing = dict(devs)
        poked = False
        while True:
            for addr, dev in list(missing.items()):
                mac = self._neigh_mac(addr, dev)
                if mac:
                    links[addr] = Link(dev, mac)
                    del missing[addr]
            if not missing or time.monotonic() >= deadline:
                break
            if not poked:
                for addr in missing:
                    self._poke(addr)
                poked = True
            time.sleep(0.02)
            self._neigh_cache = None
        unresolved: dict[str, str] = {}
        for addr, dev in missing.items():
            old = self._env.links.get(addr)
            if old is not None and old.dev == dev:
                links[addr] = old
            else:
                unresolved[addr] = dev
        new = set(unresolved) - set(self._unresolved)
        if new:
            log.warning("gate real(s) %s did not answer ARP/ND; left out until they do",
                        ", ".join(sorted(new)))
        self._unresolved = unresolved
        return links, set(unresolved)

    def _neigh_mac(self, address: str, dev: str, fresh: bool = False) -> str | None:
        """The MAC of `address` on `dev` from one neighbour table dump per apply/refresh."""
        if fresh or self._neigh_cache is None:
            assert self._facts is not None
            self._neigh_cache = self._facts.neighbours()
        return self._neigh_cache.get((address, dev))

    @staticmethod
    def _poke(address: str) -> None:
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            try:
                s.sendto(b"", (address, 9))
            except OSError:
                pass

    # statistics ----------------------------------------------------------------------------
    def _refresh_sync(self) -> bool:
        """Read counters and counts; returns True when adaptive weights or MACs changed (the
        caller re-applies)."""
        assert self._nft is not None
        rendered = self._rendered
        if rendered is None:
            return False
        values: dict[CounterRef, tuple[int, int]] = {}
        for (fam, name) in rendered.tables:
            try:
                counters = self._nft.counters(fam, name)
            except NftError:
                continue
            for cname, pb in counters.items():
                ref = rendered.counters.get((fam, name, cname))
                if ref is not None:
                    values[ref] = pb
        need_counts = self.count_connections or self._needs_counts()
        active, inactive, persist = (self._count_connections(rendered) if need_counts
                                     else ({}, {}, {}))
        now = self.clock()
        services: dict[str, ServiceStats] = {}
        for svc in self._desired.services:
            reals: dict[tuple[str, int], RealStats] = {}
            total = Counters()
            for r in svc.installed:
                k = (svc.key, r.key)
                conns = values.get(CounterRef(svc.key, r.key, "conns"), (0, 0))[0]
                inp = values.get(CounterRef(svc.key, r.key, "in"), (0, 0))
                outp = values.get(CounterRef(svc.key, r.key, "out"), (0, 0))
                c = Counters(conns=conns, inpkts=inp[0], outpkts=outp[0], inbytes=inp[1], outbytes=outp[1])
                est = self._est.setdefault(k, RateEstimator())
                est.sample(c, now)
                reals[r.key] = RealStats(counters=c, rates=est.rates(), active=active.get(k, 0),
                                         inactive=inactive.get(k, 0), persist=persist.get(k, 0))
                total = total + c
            est = self._est.setdefault(svc.key, RateEstimator())
            est.sample(total, now)
            services[svc.key] = ServiceStats(counters=total, rates=est.rates(), reals=reals)
        self._stats = BalancerStats(services=services)
        changed = False
        weights = adaptive_weights(self._desired, active, inactive)
        if weights != self._weights:
            self._weights = weights
            changed = True
        if self._macs_changed():
            changed = True
        return changed

    def _needs_counts(self) -> bool:
        return any(s.scheduler in ADAPTIVE or any(r.upper_threshold for r in s.reals)
                   for s in self._desired.services)

    def _macs_changed(self) -> bool:
        self._neigh_cache = None
        if self._unresolved:
            for addr in self._unresolved:
                self._poke(addr)
            time.sleep(0.05)
            for addr, dev in self._unresolved.items():
                if self._neigh_mac(addr, dev):
                    log.info("gate real %s answered ARP/ND: putting it in", addr)
                    return True
        for addr, link in self._env.links.items():
            mac = self._neigh_mac(addr, link.dev)
            if mac and mac != link.mac:
                log.info("gate real %s: MAC %s -> %s", addr, link.mac, mac)
                return True
        return False

    def _count_connections(self, rendered: Rendered):
        active: dict[tuple[str, tuple[str, int]], int] = {}
        inactive: dict[tuple[str, tuple[str, int]], int] = {}
        persist: dict[tuple[str, tuple[str, int]], int] = {}
        assert self._nft is not None
        # direct routing: open flows in the flow sets (active), closing ones in the fin sets
        for sets, d in ((rendered.flow_sets, active), (rendered.closing_sets, inactive)):
            for (fam, table, name), k in sets.items():
                d[k] = d.get(k, 0) + self._set_size(fam, table, name)
        for (fam, table, name), k in rendered.persist_sets.items():
            persist[k] = self._set_size(fam, table, name)
        # NAT: conntrack entries whose original destination is the service and reply source a real
        if rendered.nat_reals:
            self._count_conntrack(rendered, active, inactive)
        return active, inactive, persist

    def _set_size(self, fam: str, table: str, name: str) -> int:
        assert self._nft is not None
        try:
            return self._nft.set_size(fam, table, name)
        except NftError:
            return 0

    def _count_conntrack(self, rendered: Rendered, active: dict, inactive: dict) -> None:
        try:
            from pyroute2 import Conntrack
        except ImportError:
            return
        by_vip: dict[tuple[str, int, int], ServiceState] = {}
        by_mark: dict[int, ServiceState] = {}
        for svc in self._desired.services:
            if svc.key not in rendered.nat_reals:
                continue
            if svc.fwmark is not None:
                by_mark[svc.fwmark] = svc
            else:
                proto = socket.IPPROTO_TCP if svc.protocol == "tcp" else socket.IPPROTO_UDP
                by_vip[(svc.address, svc.port, proto)] = svc  # type: ignore[index]
        try:
            ct = Conntrack()
        except Exception as exc:  # no conntrack netlink: counts stay 0
            log.debug("conntrack unavailable: %s", exc)
            return
        try:
            for e in ct.dump_entries():
                o, rp = e.tuple_orig, e.tuple_reply
                svc = by_vip.get((o.daddr, o.dport, o.proto))
                if svc is None and e.mark:
                    svc = by_mark.get(e.mark)
                if svc is None:
                    continue
                rkey = (rp.saddr, rp.sport if svc.fwmark is None else 0)
                reals = {r.key for r in rendered.nat_reals[svc.key]}
                if rkey not in reals:
                    rkey = next((k for k in reals if k[0] == rp.saddr), rkey)
                state = getattr(e.protoinfo, "state", None) if e.protoinfo is not None else None
                d = active if state == TCP_ESTABLISHED else inactive
                k = (svc.key, rkey)
                d[k] = d.get(k, 0) + 1
        finally:
            ct.close()

    async def _background(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.stats_interval)
            try:
                async with self._lock:
                    changed = await self._worker.acall(self._refresh_sync)
                    if changed:
                        await self._worker.acall(self._apply_sync, self._desired, False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a transient failure must not end statistics for good
                log.warning("nft statistics/adaptation: %s", exc)


def _without(desired: DesiredState, reals: set[str]) -> DesiredState:
    """The desired state with the named gate reals marked down (not installed)."""
    if not reals:
        return desired
    services = []
    for svc in desired.services:
        rs = tuple(replace(r, status="down") if r.method == "gate" and r.address in reals else r
                   for r in svc.reals)
        services.append(replace(svc, reals=rs))
    return DesiredState(services=tuple(services))


def adaptive_weights(desired: DesiredState, active: Mapping, inactive: Mapping,
                     arrivals: int | None = None) -> dict[tuple[str, tuple[str, int]], int]:
    """Weights for the next interval of services whose scheduler needs connection counts (lc,
    wlc, sed, nq, ovf) or whose reals have thresholds. Pure.

    The exact IPVS scheduler (balancer/schedulers.py) is run over `arrivals` simulated new
    connections (default 4 per real, at least 16), starting from the measured active/inactive
    counts and counting each simulated connection as active; how many each real received is its
    weight until the next measurement. A real at or over its upper threshold (ipvsadm -x) gets 0
    for the interval (the kernel's overload flag; the lower threshold's hysteresis is not kept).
    """
    out: dict[tuple[str, tuple[str, int]], int] = {}
    for svc in desired.services:
        thresholds = any(r.upper_threshold for r in svc.installed)
        if svc.scheduler not in ADAPTIVE and not thresholds:
            continue
        dests = []
        for r in svc.installed:
            d = Dest(r.key, 0, r.port, r.weight if r.status == "up" else 0,
                     r.upper_threshold, r.lower_threshold)
            d.active = active.get((svc.key, r.key), 0)
            d.inactive = inactive.get((svc.key, r.key), 0)
            if d.u_threshold and d.total >= d.u_threshold:
                d.overloaded = True
            dests.append(d)
        if svc.scheduler not in ADAPTIVE:
            # only thresholds: configured weights, 0 while overloaded
            for d in dests:
                out[(svc.key, d.key)] = 0 if d.overloaded else d.weight  # type: ignore[index]
            continue
        sched = make_scheduler(svc.scheduler, sched_flag_bits(svc.sched_flags))
        sched.update(dests)
        n = arrivals or max(16, 4 * len(dests))
        got: dict[Any, int] = {d.key: 0 for d in dests}
        for _ in range(n):
            d = sched.schedule(0, 0, 0, 0, 0.0)
            if d is None:
                break
            got[d.key] += 1
            d.active += 1
        for k, v in got.items():
            out[(svc.key, k)] = v  # type: ignore[index]
    return out
