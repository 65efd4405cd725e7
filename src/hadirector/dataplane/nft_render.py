"""The nftables ruleset for a balancer's desired state, as libnftables JSON. Pure: no I/O.

How it works. `render(desired, env, options)` turns a `DesiredState` (balancer/state.py) plus the
facts the driver looked up (`RenderEnv`: the MAC and device of each direct-routing real, the
device each VIP arrives on, the director's own addresses, adaptive weights) into `Rendered`:
per table its chains, sets, counters and rules. `install_commands(rendered)` gives the batch that
creates it from nothing (what the golden files hold); `plan(existing, rendered)` gives the one
transaction that turns what the kernel has into it, keeping the dynamic sets (flow memory,
persistence) and the named counters that survive, so an apply never forgets an open flow.

Layout (see docs/dataplane-nft.md):
- `table ip hadirector` (and `ip6`): NAT (`masq`) services and local/fallback delivery.
  `prerouting` (nat, dstnat) matches each service and jumps to `svc_<S>`; that chain checks the
  persistence sets, then schedules with a verdict map (numgen for rr/wrr/adaptive, jhash for
  sh/dh/mh) into `real_<S>_<R>`, which counts the connection, remembers the client for
  persistence and DNATs. Only a connection's first packet sees nat chains; conntrack carries the
  rest, so changing weights or reals never disturbs an open connection (IPVS keeps its own
  connection table for the same effect). `forward` (filter) counts packets and bytes per real in
  both directions; `postrouting` (nat, srcnat) masquerades or SNATs when configured.
- `table netdev hadirector_<dev>`: direct-routing (`gate`) services on the device the VIP
  arrives on. `ingress` matches each service; `svc_<S>` first looks the flow (client address and
  port) up in each real's flow sets, `flow_<S>_<R>` and (closing TCP flows) `fin_<S>_<R>`, and
  keeps an open flow on its real (`est_`/`cls_` chains refresh the memory); a new flow is
  scheduled as above into `new_<S>_<R>` (count, remember). Each ends by rewriting the
  destination MAC to the real's and the source MAC to ours and forwarding out of the real's
  device. There is no conntrack at ingress, hence the flow sets (timeout after the last packet,
  ipvsadm --set tcp/udp; a short one after FIN or RST).

Schedulers (IPVS semantics where rules can hold them): rr and wrr as `numgen inc` over the
kernel's interleaved wrr order; sh and dh as `jhash` of the client (sh-port: and its port) or
destination address over a 256-bucket table filled like ip_vs_sh.c; mh as a Maglev table
(balancer/maglev.py) of `options.mh_size` positions; fo as the single highest-weight real;
lblc/lblcr as dh. lc, wlc, sed, nq and ovf need connection counts: the driver measures them and
passes weights in `env.weights`, which then replace the configured ones in a weighted numgen.

Names: a service's tag is its ipvsadm key lowercased with every other character replaced by
`_` ("TCP 198.18.0.100:80" -> `tcp_198.18.0.100_80`), a real's is `<address>_<port>`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..balancer import maglev
from ..balancer.schedulers import (SCHEDULERS, SH_TAB_SIZE, Dest, WeightedRoundRobin,
                                    _weighted_buckets, addr_int, weight_gcd)
from ..balancer.state import DesiredState, RealState, ServiceState
from ..errors import HadirectorError
from .base import Capabilities

TABLE = "hadirector"

# What the nft data plane can install; `_render_service` refuses the rest from these fields.
# ipip: no tunnel encapsulation in nftables rules. Direct routing happens at netdev ingress,
# before prerouting sets a firewall mark, and can rewrite MACs but not the port; a service is
# scheduled either at ingress (gate) or in nat prerouting (masq), not both. One-packet scheduling
# cannot be had with NAT: conntrack keeps a UDP flow on its real.
CAPABILITIES = Capabilities(
    kind="nft", protocols=frozenset({"tcp", "udp", "fwm"}), schedulers=frozenset(SCHEDULERS),
    methods=frozenset({"gate", "masq", "local"}), relayed_methods=frozenset(),
    gate_fwmark=False, mixed_gate_nat=False, gate_port_change=False, ops=False,
    proxy_protocol=False, needs_root=True)

Json = dict[str, Any]


class RenderError(HadirectorError, ValueError):
    """The desired state cannot be expressed by this data plane; the message names the service."""


@dataclass(frozen=True)
class NftOptions:
    table: str = TABLE
    snat: str = "none"  # "none", "masquerade", or an address to SNAT to (NAT services)
    tcp_timeout: int = 900  # s: DR flow memory after the last packet (ipvsadm --set tcp default)
    tcpfin_timeout: int = 10  # s: DR flow memory after a FIN or RST from the client
    udp_timeout: int = 300  # s (ipvsadm --set udp default)
    flow_size: int = 262144  # elements per DR flow set
    persist_size: int = 65536  # elements per persistence set
    mh_size: int = 4093  # Maglev positions (the kernel's default CONFIG_IP_VS_MH_TAB_INDEX=12)
    hash_seed: int = 0x68646972  # jhash seed for sh/dh/mh
    ingress_priority: int = -100  # netdev ingress chain priority
    wrr_interleave_max: int = 1024  # longest wrr cycle rendered in the kernel's interleaved order
    count_traffic: bool = True  # per-real packet/byte counters for NAT services (forward chain)
    # flow sync (issue 12, daemon/flowsync.py): NFLOG group told of each new DR flow and each
    # flow that starts closing; None = no log rules (a single director)
    sync_group: int | None = None

    def __post_init__(self) -> None:
        if self.snat not in ("none", "masquerade"):
            try:
                ipaddress.ip_address(self.snat)
            except ValueError:
                raise RenderError(f"snat {self.snat!r}: expected none, masquerade or an address") from None
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,30}", self.table):
            raise RenderError(f"table name {self.table!r}: expected letters, digits and _")


@dataclass(frozen=True)
class Link:
    """How the director reaches a direct-routing real: the device and the real's MAC."""

    dev: str
    mac: str


@dataclass(frozen=True)
class RenderEnv:
    links: Mapping[str, Link] = field(default_factory=dict)  # gate real address -> Link
    dev_macs: Mapping[str, str] = field(default_factory=dict)  # director device -> its MAC
    vip_devs: Mapping[str, str] = field(default_factory=dict)  # VIP -> device it arrives on
    local_addrs: frozenset[str] = frozenset()  # the director's own addresses
    # adaptive schedulers (lc, wlc, sed, nq, ovf) and thresholds: (service key, real key) -> weight
    weights: Mapping[tuple[str, tuple[str, int]], int] = field(default_factory=dict)


@dataclass
class Table:
    family: str  # ip, ip6, netdev
    name: str
    base: dict[str, Json] = field(default_factory=dict)  # base chain name -> hook spec
    chains: list[str] = field(default_factory=list)  # every chain, base ones included, in order
    sets: dict[str, Json] = field(default_factory=dict)  # name -> definition (type, flags, ...)
    counters: list[str] = field(default_factory=list)
    rules: list[tuple[str, list[Json]]] = field(default_factory=list)

    def chain(self, name: str, hook: Json | None = None) -> str:
        if name not in self.chains:
            self.chains.append(name)
            if hook is not None:
                self.base[name] = hook
        return name

    def rule(self, chain: str, *expr: Json) -> None:
        self.rules.append((chain, list(expr)))

    def counter(self, name: str) -> str:
        if name not in self.counters:
            self.counters.append(name)
        return name


@dataclass(frozen=True)
class CounterRef:
    service: str  # service key
    real: tuple[str, int]  # real key
    kind: str  # conns, in, out


@dataclass(frozen=True)
class SyncSets:
    """The dynamic sets of one DR real that flow sync carries (names "family table set"), their
    timeouts in ms, and the persistence key's prefix length (None: not persistent)."""

    flow: str | None
    fin: str | None
    persist: str | None
    flow_timeout: int
    fin_timeout: int
    persist_timeout: int
    persist_prefix: int | None
    ipv6: bool


SYNC_NEW, SYNC_FIN = "N", "F"  # NFLOG prefix heads: a new flow, a flow starting to close
NFLOG_PREFIX_MAX = 127  # NF_LOG_PREFIXLEN - 1


def _deterministic(svc: ServiceState) -> bool:
    """Schedulers both directors compute alike from the packet (hashing, or the single
    highest-weight real): a backup with the same reals sends an old flow to the same real without
    being told, so flow sync leaves their flows out (persistence templates still travel)."""
    return svc.scheduler in ("sh", "dh", "mh", "lblc", "lblcr", "fo")


@dataclass
class Rendered:
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    counters: dict[tuple[str, str, str], CounterRef] = field(default_factory=dict)  # (fam, table, name)
    # flow and persistence sets per real, for connection counts: (fam, table, set) -> ref
    flow_sets: dict[tuple[str, str, str], tuple[str, tuple[str, int]]] = field(default_factory=dict)
    closing_sets: dict[tuple[str, str, str], tuple[str, tuple[str, int]]] = field(default_factory=dict)
    persist_sets: dict[tuple[str, str, str], tuple[str, tuple[str, int]]] = field(default_factory=dict)
    nat_reals: dict[str, list[RealState]] = field(default_factory=dict)  # service key -> NAT reals
    # flow sync: the NFLOG prefix "<dev> <S>_<R>" of a DR real -> what to sync for it
    sync: dict[str, "SyncSets"] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def table(self, family: str, name: str) -> Table:
        key = (family, name)
        if key not in self.tables:
            self.tables[key] = Table(family, name)
        return self.tables[key]


# ----------------------------------------------------------------------------- expressions

def payload(proto: str, fld: str) -> Json:
    return {"payload": {"protocol": proto, "field": fld}}


def match(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def meta(key: str) -> Json:
    return {"meta": {"key": key}}


def ct(key: str, direction: str | None = None, family: str | None = None) -> Json:
    d: Json = {"key": key}
    if family:
        d["family"] = family
    if direction:
        d["dir"] = direction
    return {"ct": d}


def goto(chain: str) -> Json:
    return {"goto": {"target": chain}}


def jump(chain: str) -> Json:
    return {"jump": {"target": chain}}


def concat(*exprs: Json) -> Json:
    return {"concat": list(exprs)} if len(exprs) > 1 else exprs[0]


def tag(text: str) -> str:
    return re.sub(r"[^a-z0-9.]", "_", text.lower())


def real_tag(r: RealState) -> str:
    return tag(f"{r.address}_{r.port}")


def _ipfam(ipv6: bool) -> str:
    return "ip6" if ipv6 else "ip"


def _mask(ipv6: bool, prefix: int) -> str:
    full = 128 if ipv6 else 32
    return str(ipaddress.ip_network(f"{'::' if ipv6 else '0.0.0.0'}/{prefix}").netmask) if prefix < full else ""


def _client_net(svc: ServiceState) -> Json:
    """The persistence key: the client address masked with the service's netmask (ipvsadm -M)."""
    fam = _ipfam(svc.ipv6)
    src = payload(fam, "saddr")
    prefix = svc.netmask if svc.netmask is not None else (128 if svc.ipv6 else 32)
    mask = _mask(svc.ipv6, prefix)
    return {"&": [src, mask]} if mask else src


def _service_match(svc: ServiceState) -> list[Json]:
    fam = _ipfam(svc.ipv6)
    if svc.fwmark is not None:
        # the mark is set by the administrator's mangle rules (priority -150) before nat prerouting
        return [match(meta("mark"), svc.fwmark)]
    return [match(payload(fam, "daddr"), svc.address),
            match(payload(svc.protocol, "dport"), svc.port)]


def _flow_key(svc: ServiceState) -> Json:
    fam = _ipfam(svc.ipv6)
    return concat(payload(fam, "saddr"), payload(svc.protocol, "sport"))


def _set_type(svc: ServiceState, with_port: bool) -> Any:
    addr = "ipv6_addr" if svc.ipv6 else "ipv4_addr"
    return [addr, "inet_service"] if with_port else addr


def _ranges(values: Sequence[int]) -> list[tuple[int, int, int]]:
    """Compress a table (position -> value) into runs (first, last, value)."""
    out: list[tuple[int, int, int]] = []
    for i, v in enumerate(values):
        if out and out[-1][2] == v and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i, v)
        else:
            out.append((i, i, v))
    return out


def _vmap(key: Json, runs: Sequence[tuple[int, int, int]], targets: Sequence[str]) -> Json:
    """A verdict map from position runs (first, last, index) to `goto targets[index]`."""
    elems = []
    for lo, hi, v in runs:
        k: Any = lo if lo == hi else {"range": [lo, hi]}
        elems.append([k, goto(targets[v])])
    return {"vmap": {"key": key, "data": {"set": elems}}}


# ----------------------------------------------------------------------------- schedulers

def wrr_sequence(weights: Sequence[int]) -> list[int]:
    """One cycle of the kernel's wrr order (ip_vs_wrr.c) over the given weights: indices."""
    dests = [Dest(i, i, 0, w) for i, w in enumerate(weights)]
    s = WeightedRoundRobin()
    s.update(dests)
    g = weight_gcd(weights)
    n = sum(w // g for w in weights if w > 0)
    out = []
    for _ in range(n):
        d = s.schedule(0, 0, 0, 0, 0.0)
        assert d is not None
        out.append(d.key)
    return out  # type: ignore[return-value]


def proportional_runs(weights: Sequence[int]) -> tuple[list[tuple[int, int, int]], int]:
    """weight/gcd consecutive positions per index (exact ratio over one cycle): (runs, cycle)."""
    g = weight_gcd(weights)
    runs: list[tuple[int, int, int]] = []
    pos = 0
    for i, w in enumerate(weights):
        if w > 0:
            runs.append((pos, pos + w // g - 1, i))
            pos += w // g
    return runs, pos


def schedule_expr(svc: ServiceState, cands: Sequence[tuple[RealState, int]], targets: Sequence[str],
                  options: NftOptions, adaptive: bool = False) -> list[Json]:
    """The rule that picks one of `cands` (real, weight > 0) for a new flow; `targets[i]` is the
    chain of cands[i]. `adaptive`: the weights were measured by the driver (lc family)."""
    if not cands:
        return []
    fam = _ipfam(svc.ipv6)
    sched = svc.scheduler
    weights = [w for _, w in cands]
    if len(cands) == 1:
        return [goto(targets[0])]
    if sched == "fo":
        # ip_vs_fo.c: the first real with the highest weight
        best = max(range(len(cands)), key=lambda i: (weights[i], -i))
        return [goto(targets[best])]
    if sched in ("sh", "dh", "lblc", "lblcr", "mh"):
        if sched in ("sh", "mh"):
            key: Json = payload(fam, "saddr")
            if f"{sched}-port" in svc.sched_flags and svc.fwmark is None:
                key = concat(key, payload(svc.protocol, "sport"))
        else:
            key = payload(fam, "daddr")
        if sched == "mh":
            t = maglev.MaglevTable(options.mh_size)
            servers = [(addr_int(r.address), r.port, w) for r, w in cands]
            table = t.populate(servers)
        else:
            dests = [Dest(i, 0, 0, w) for i, w in enumerate(weights)]
            table = [d.key for d in _weighted_buckets(dests, SH_TAB_SIZE)]  # type: ignore[union-attr]
        h = {"jhash": {"expr": key, "mod": len(table), "seed": options.hash_seed}}
        return [_vmap(h, _ranges(table), targets)]
    # rr, wrr and the adaptive ones (weights measured by the driver, else these defaults)
    if sched == "rr" or (sched == "lc" and not adaptive):
        weights = [1] * len(cands)  # ip_vs_rr.c / ip_vs_lc.c ignore the weight's size
    elif sched == "ovf" and not adaptive:
        # ip_vs_ovf.c with no connection counts yet: the highest weight takes everything
        best = max(range(len(cands)), key=lambda i: (weights[i], -i))
        return [goto(targets[best])]
    total = sum(weights) // weight_gcd(weights)
    if total <= options.wrr_interleave_max:
        seq = wrr_sequence(weights)
        runs, size = _ranges(seq), len(seq)
    else:
        runs, size = proportional_runs(weights)
    return [_vmap({"numgen": {"mode": "inc", "mod": size, "offset": 0}}, runs, targets)]


# ----------------------------------------------------------------------------- render

def _method(r: RealState, env: RenderEnv) -> str:
    """gate / masq / local (a real at one of the director's own addresses is served locally,
    as IPVS forces IP_VS_CONN_F_LOCALNODE)."""
    if r.method == "local":
        return "local"
    try:
        ip = ipaddress.ip_address(r.address)
    except ValueError:
        raise RenderError(f"real {r.address}: not an IP address") from None
    if ip.is_loopback or r.address in env.local_addrs:
        return "local"
    return r.method


def _adaptive(svc: ServiceState, env: RenderEnv) -> bool:
    return any(k[0] == svc.key for k in env.weights)


def _weight(svc: ServiceState, r: RealState, env: RenderEnv) -> int:
    if r.status != "up":
        return 0
    return env.weights.get((svc.key, r.key), r.weight)


def render(desired: DesiredState, env: RenderEnv | None = None,
           options: NftOptions | None = None) -> Rendered:
    env = env or RenderEnv()
    options = options or NftOptions()
    out = Rendered()
    for svc in desired.services:
        _render_service(out, svc, env, options)
    # base chains get their rules after the per-service chains exist (order is cosmetic)
    for t in out.tables.values():
        t.chains.sort(key=lambda c: (c not in t.base, _BASE_ORDER.get(c, 9)))
    return out


_BASE_ORDER = {"ingress": 0, "prerouting": 1, "forward": 2, "postrouting": 3}


def _nat_table(out: Rendered, svc: ServiceState, options: NftOptions) -> Table:
    t = out.table(_ipfam(svc.ipv6), options.table)
    t.chain("prerouting", {"type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"})
    return t


def _render_service(out: Rendered, svc: ServiceState, env: RenderEnv, options: NftOptions) -> None:
    where = svc.key
    reals = list(svc.installed)
    by_method: dict[str, list[RealState]] = {"gate": [], "nat": []}
    for r in reals:
        m = _method(r, env)
        if not CAPABILITIES.accepts_method(m):
            raise RenderError(f"{where}: real {r.address}:{r.port} uses ipip (tunnel), which the nft "
                              "data plane cannot do; use gate or masq")
        by_method["gate" if m == "gate" else "nat"].append(r)
    live = {k: [r for r in v if _weight(svc, r, env) > 0] for k, v in by_method.items()}
    if live["gate"] and live["nat"] and not CAPABILITIES.mixed_gate_nat:
        raise RenderError(f"{where}: mixes gate reals with masq/local reals that take new "
                          "connections; the nft data plane schedules a service in one place")
    if by_method["gate"]:
        if svc.fwmark is not None and not CAPABILITIES.gate_fwmark:
            raise RenderError(f"{where}: direct routing (gate) of a fwmark service is not possible "
                              "at netdev ingress (the mark is set later, in prerouting); use masq")
        for r in by_method["gate"]:
            if (svc.port is not None and r.port not in (svc.port, 0)
                    and not CAPABILITIES.gate_port_change):
                raise RenderError(f"{where}: gate real {r.address}:{r.port} has another port than "
                                  f"the service; direct routing cannot change the port")
        _render_gate(out, svc, by_method["gate"], env, options)
    if by_method["nat"] or not by_method["gate"]:
        _render_nat(out, svc, by_method["nat"], env, options)
    if svc.ops and by_method["nat"] and not CAPABILITIES.ops:
        out.warnings.append(f"{where}: one-packet scheduling (ops) is not available with NAT in the "
                            "nft data plane; conntrack keeps each UDP flow on one real")


def _cands(svc: ServiceState, reals: Sequence[RealState], env: RenderEnv) -> list[tuple[RealState, int]]:
    return [(r, w) for r in reals if (w := _weight(svc, r, env)) > 0]


def _persist_then_schedule(t: Table, svc: ServiceState, svc_chain: str, reals: Sequence[RealState],
                           chains: Sequence[str], env: RenderEnv, options: NftOptions) -> None:
    """The end of a service chain: persistence first, then the scheduler; `chains[i]` is where
    reals[i]'s flows go. A known client network goes back to its real, even one at weight 0
    (IPVS keeps templates to quiescent servers unless expire_quiescent_template is set)."""
    if svc.persistent_ms is not None:
        s = tag(svc.key)
        for r, chain in zip(reals, chains):
            t.rule(svc_chain, match(_client_net(svc), f"@persist_{s}_{real_tag(r)}"), goto(chain))
    cands = _cands(svc, reals, env)
    idx = {id(r): i for i, r in enumerate(reals)}
    sched = schedule_expr(svc, cands, [chains[idx[id(r)]] for r, _ in cands], options,
                          _adaptive(svc, env))
    if sched:
        t.rule(svc_chain, *sched)


def _render_nat(out: Rendered, svc: ServiceState, reals: list[RealState], env: RenderEnv,
                options: NftOptions) -> None:
    t = _nat_table(out, svc, options)
    fam = t.family
    s = tag(svc.key)
    out.nat_reals[svc.key] = list(reals)
    svc_chain = t.chain(f"svc_{s}")
    t.rule("prerouting", *_service_match(svc), jump(svc_chain))
    targets = []
    for r in reals:
        rt = real_tag(r)
        chain = t.chain(f"real_{s}_{rt}")
        targets.append(chain)
        cname = t.counter(f"{s}_{rt}_conns")
        out.counters[(fam, t.name, cname)] = CounterRef(svc.key, r.key, "conns")
        stmts: list[Json] = [{"counter": cname}]
        if svc.persistent_ms is not None:
            pset = f"persist_{s}_{rt}"
            t.sets[pset] = {"type": _set_type(svc, False), "flags": ["timeout"],
                            "timeout": -(-svc.persistent_ms // 1000), "size": options.persist_size}
            out.persist_sets[(fam, t.name, pset)] = (svc.key, r.key)
            t.rule(chain, {"counter": cname})
            # the persistence template: client network -> this real (ip_vs_sched_persist)
            t.rule(chain, {"set": {"op": "update", "elem": _client_net(svc), "set": f"@{pset}"}})
            stmts = []
        method = _method(r, env)
        if method == "local":
            if svc.port is not None and r.port not in (0, svc.port):
                # deliver to the local port: daddr becomes the receiving interface's address
                stmts += [match(meta("l4proto"), svc.protocol), {"redirect": {"port": r.port}}]
            else:
                stmts += [{"accept": None}]
        else:
            if r.port and svc.protocol in ("tcp", "udp"):
                stmts += [match(meta("l4proto"), svc.protocol), {"dnat": {"addr": r.address, "port": r.port}}]
            else:
                stmts += [{"dnat": {"addr": r.address}}]
        t.rule(chain, *stmts)
    _persist_then_schedule(t, svc, svc_chain, reals, targets, env, options)
    # statistics: packets and bytes per real, both directions (ip_vs_in/ip_vs_out stats)
    counted = [r for r in reals if _method(r, env) == "masq"]
    if options.count_traffic and counted:
        _render_nat_stats(t, out, svc, counted)
    if options.snat not in ("none", "masquerade") and \
            ipaddress.ip_address(options.snat).version != (6 if svc.ipv6 else 4):
        raise RenderError(f"{svc.key}: snat address {options.snat} is not of the service's family")
    if options.snat != "none" and any(_method(r, env) == "masq" for r in reals):
        t.chain("postrouting", {"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"})
        if svc.fwmark is not None:
            sel = [match(meta("mark"), svc.fwmark)]
        else:
            sel = [match(ct("l3proto", "original"), "ipv6" if svc.ipv6 else "ipv4"),
                   match(ct("protocol", "original"), svc.protocol),
                   match(ct("daddr", "original", fam), svc.address),
                   match(ct("proto-dst", "original"), svc.port)]
        action = {"masquerade": None} if options.snat == "masquerade" else {"snat": {"addr": options.snat}}
        t.rule("postrouting", match(ct("status"), "dnat", "in"), *sel, action)


def _render_nat_stats(t: Table, out: Rendered, svc: ServiceState, reals: list[RealState]) -> None:
    fam = t.family
    s = tag(svc.key)
    t.chain("forward", {"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"})
    chain = t.chain(f"stats_{s}")
    if svc.fwmark is not None:
        sel = [match(ct("status"), "dnat", "in"), match(meta("mark"), svc.fwmark)]
        t.rule("forward", *sel, jump(chain))
        t.rule("forward", match(ct("status"), "dnat", "in"), match(ct("direction"), "reply"), jump(chain))
    else:
        sel = [match(ct("status"), "dnat", "in"),
               match(ct("l3proto", "original"), "ipv6" if svc.ipv6 else "ipv4"),
               match(ct("protocol", "original"), svc.protocol),
               match(ct("daddr", "original", fam), svc.address),
               match(ct("proto-dst", "original"), svc.port)]
        t.rule("forward", *sel, jump(chain))
    in_map, out_map = [], []
    for r in reals:
        rt = real_tag(r)
        cin = t.counter(f"{s}_{rt}_in")
        cout = t.counter(f"{s}_{rt}_out")
        out.counters[(fam, t.name, cin)] = CounterRef(svc.key, r.key, "in")
        out.counters[(fam, t.name, cout)] = CounterRef(svc.key, r.key, "out")
        if svc.fwmark is not None or not r.port:
            in_map.append([r.address, cin])
            out_map.append([r.address, cout])
        else:
            in_map.append([{"concat": [r.address, r.port]}, cin])
            out_map.append([{"concat": [r.address, r.port]}, cout])
    if svc.fwmark is not None or any(not r.port for r in reals):
        kin, kout = payload(fam, "daddr"), payload(fam, "saddr")
        in_map = [[k if isinstance(k, str) else k["concat"][0], c] for k, c in in_map]
        out_map = [[k if isinstance(k, str) else k["concat"][0], c] for k, c in out_map]
    else:
        kin = concat(payload(fam, "daddr"), payload(svc.protocol, "dport"))
        kout = concat(payload(fam, "saddr"), payload(svc.protocol, "sport"))
    t.rule(chain, match(ct("direction"), "original"),
           {"counter": {"map": {"key": kin, "data": {"set": in_map}}}})
    t.rule(chain, match(ct("direction"), "reply"),
           {"counter": {"map": {"key": kout, "data": {"set": out_map}}}})


def _render_gate(out: Rendered, svc: ServiceState, reals: list[RealState], env: RenderEnv,
                 options: NftOptions) -> None:
    where = svc.key
    dev = env.vip_devs.get(svc.address or "")
    if not dev:
        raise RenderError(f"{where}: no device known for VIP {svc.address} (direct routing hooks the "
                          "ingress of the device the VIP arrives on)")
    t = out.table("netdev", f"{options.table}_{dev}")
    t.chain("ingress", {"type": "filter", "hook": "ingress", "dev": dev,
                        "prio": options.ingress_priority, "policy": "accept"})
    s = tag(svc.key)
    svc_chain = t.chain(f"svc_{s}")
    t.rule("ingress", *_service_match(svc), jump(svc_chain))
    timeout = options.udp_timeout if svc.protocol == "udp" else options.tcp_timeout
    remember = not svc.ops
    new_chains = []
    fkey = _flow_key(svc)
    for r in reals:
        rt = real_tag(r)
        link = env.links.get(r.address)
        if link is None:
            raise RenderError(f"{where}: no link-layer address known for gate real {r.address} "
                              "(it must be on a directly connected network and answer ARP/ND)")
        src_mac = env.dev_macs.get(link.dev)
        if src_mac is None:
            raise RenderError(f"{where}: no MAC address known for device {link.dev}")
        fset = f"flow_{s}_{rt}"
        new_chain = t.chain(f"new_{s}_{rt}")
        new_chains.append(new_chain)
        cconn = t.counter(f"{s}_{rt}_conns")
        cin = t.counter(f"{s}_{rt}_in")
        out.counters[("netdev", t.name, cconn)] = CounterRef(svc.key, r.key, "conns")
        out.counters[("netdev", t.name, cin)] = CounterRef(svc.key, r.key, "in")
        # count, rewrite both MACs, out of the real's device (the last rule of each chain below)
        forward = [{"counter": cin},
                   {"mangle": {"key": payload("ether", "daddr"), "value": link.mac}},
                   {"mangle": {"key": payload("ether", "saddr"), "value": src_mac}},
                   {"fwd": {"dev": link.dev}}]
        # a new flow: count a connection, remember the flow and the client
        t.rule(new_chain, {"counter": cconn})
        if remember:
            t.sets[fset] = {"type": _set_type(svc, True), "flags": ["timeout"], "timeout": timeout,
                            "size": options.flow_size}
            out.flow_sets[("netdev", t.name, fset)] = (svc.key, r.key)
            t.rule(new_chain, {"set": {"op": "update", "elem": fkey, "set": f"@{fset}"}})
        if svc.persistent_ms is not None:
            pset = f"persist_{s}_{rt}"
            t.sets[pset] = {"type": _set_type(svc, False), "flags": ["timeout"],
                            "timeout": -(-svc.persistent_ms // 1000), "size": options.persist_size}
            out.persist_sets[("netdev", t.name, pset)] = (svc.key, r.key)
            t.rule(new_chain, {"set": {"op": "update", "elem": _client_net(svc), "set": f"@{pset}"}})
        sync_log = _sync_log(out, t, svc, dev, f"{s}_{rt}", fset if remember else None, options)
        if sync_log is not None and (sync_log[0] or svc.persistent_ms is not None):
            t.rule(new_chain, {"log": {"prefix": f"{SYNC_NEW} {dev} {s}_{rt}", "group": options.sync_group}})
        t.rule(new_chain, *forward)
        # an open flow stays on its real whatever its weight now (IPVS connection table)
        if remember:
            _flow_chains(t, out, svc, svc_chain, f"{s}_{rt}", fset, fkey, forward, options, r,
                         sync_log is not None and sync_log[0])
    _persist_then_schedule(t, svc, svc_chain, reals, new_chains, env, options)
    # no real takes the flow: it goes on up the stack (to the NAT table's fallback, or a RST)


def _sync_log(out: Rendered, t: Table, svc: ServiceState, dev: str, sr: str, fset: str | None,
              options: NftOptions) -> tuple[bool] | None:
    """Flow sync for one DR real: record its sets in `out.sync`; returns (flows logged?) or None
    when nothing is logged (no sync group, or the prefix would not fit)."""
    if options.sync_group is None:
        return None
    prefix = f"{SYNC_NEW} {dev} {sr}"
    if len(prefix.encode()) > NFLOG_PREFIX_MAX:
        out.warnings.append(f"{svc.key}: flow sync skips real {sr} (NFLOG prefix longer than "
                            f"{NFLOG_PREFIX_MAX} bytes)")
        return None
    flows = fset is not None and not _deterministic(svc)
    name = f"{t.family} {t.name} "
    persist = svc.persistent_ms is not None
    prefix_len = (svc.netmask if svc.netmask is not None else (128 if svc.ipv6 else 32)) if persist else None
    out.sync[f"{dev} {sr}"] = SyncSets(
        flow=name + fset if flows and fset else None,
        fin=name + _fin_set(fset) if flows and fset and svc.protocol == "tcp" else None,
        persist=name + f"persist_{sr}" if persist else None,
        flow_timeout=1000 * (options.udp_timeout if svc.protocol == "udp" else options.tcp_timeout),
        fin_timeout=1000 * options.tcpfin_timeout,
        persist_timeout=1000 * -(-(svc.persistent_ms or 0) // 1000), persist_prefix=prefix_len,
        ipv6=svc.ipv6)
    return (flows,)


def _fin_set(flow_set: str) -> str:
    return "fin" + flow_set[len("flow"):]


def _flow_chains(t: Table, out: Rendered, svc: ServiceState, svc_chain: str, sr: str, fset: str,
                 fkey: Json, forward: list[Json], options: NftOptions, r: RealState,
                 sync_log: bool = False) -> None:
    """Flow memory for direct routing, refreshed by every packet from the client: `est_<S>_<R>`
    for a flow in the real's flow set. TCP flows move to the real's closing set (`fin_`, short
    timeout, ipvsadm --set tcpfin) on a FIN or RST and back on a new SYN with the same address
    and port (`cls_<S>_<R>`). Active/inactive counts are the two sets' sizes, like IPVS's
    ESTABLISHED/other split. A new flow's first packet goes through `new_` only, so the common
    paths do one lookup and one refresh."""
    est = t.chain(f"est_{sr}")
    t.rule(svc_chain, match(fkey, f"@{fset}"), goto(est))
    if svc.protocol != "tcp":
        t.rule(est, {"set": {"op": "update", "elem": fkey, "set": f"@{fset}"}})
        t.rule(est, *forward)
        return
    fin = _fin_set(fset)
    t.sets[fin] = {"type": _set_type(svc, True), "flags": ["timeout"],
                   "timeout": options.tcpfin_timeout, "size": options.flow_size}
    out.closing_sets[("netdev", t.name, fin)] = (svc.key, r.key)
    cls = t.chain(f"cls_{sr}")
    t.rule(svc_chain, match(fkey, f"@{fin}"), goto(cls))
    flags = {"&": [payload("tcp", "flags"), {"|": ["fin", "rst"]}]}
    # established: FIN or RST -> closing; anything else refreshes
    closing = [{"log": {"prefix": f"{SYNC_FIN} {t.base['ingress']['dev']} {sr}",
                        "group": options.sync_group}}] if sync_log else []
    t.rule(est, match(flags, 0, "!="), {"set": {"op": "delete", "elem": fkey, "set": f"@{fset}"}},
           {"set": {"op": "update", "elem": fkey, "set": f"@{fin}"}}, *closing)
    t.rule(est, match(flags, 0), {"set": {"op": "update", "elem": fkey, "set": f"@{fset}"}})
    t.rule(est, *forward)
    # closing: a new SYN on the same address and port is a new connection to the same real
    syn_only = {"&": [payload("tcp", "flags"), {"|": [{"|": ["syn", "fin"]}, "rst"]}]}
    t.rule(cls, match(syn_only, "syn"), {"set": {"op": "delete", "elem": fkey, "set": f"@{fin}"}},
           {"set": {"op": "update", "elem": fkey, "set": f"@{fset}"}})
    t.rule(cls, *forward)


# ----------------------------------------------------------------------------- JSON batches

def _obj(t: Table, kind: str, **fields: Any) -> Json:
    return {kind: {"family": t.family, "table": t.name, **fields}}


def _chain_obj(t: Table, name: str) -> Json:
    return _obj(t, "chain", name=name, **t.base.get(name, {}))


def _set_obj(t: Table, name: str) -> Json:
    return _obj(t, "set", name=name, **t.sets[name])


def table_commands(t: Table, chains: Iterable[str] | None = None, sets: Iterable[str] | None = None,
                   counters: Iterable[str] | None = None) -> list[Json]:
    """add commands for the given objects (default: all) and then every rule of the table."""
    cmds: list[Json] = [{"add": {"table": {"family": t.family, "name": t.name}}}]
    for n in (t.counters if counters is None else counters):
        cmds.append({"add": _obj(t, "counter", name=n)})
    for n in (t.sets if sets is None else sets):
        cmds.append({"add": _set_obj(t, n)})
    for n in (t.chains if chains is None else chains):
        cmds.append({"add": _chain_obj(t, n)})
    for chain, expr in t.rules:
        cmds.append({"add": _obj(t, "rule", chain=chain, expr=expr)})
    return cmds


def install_commands(rendered: Rendered) -> list[Json]:
    """The batch that creates the whole ruleset from nothing (golden-file form)."""
    cmds: list[Json] = []
    for key in sorted(rendered.tables):
        cmds += table_commands(rendered.tables[key])
    return cmds


@dataclass
class Existing:
    """What the kernel holds in one of our tables (from a terse JSON listing)."""

    chains: dict[str, Json] = field(default_factory=dict)  # name -> hook spec ({} if regular)
    sets: dict[str, Json] = field(default_factory=dict)  # name -> definition
    counters: set[str] = field(default_factory=set)
    rules: dict[str, list[Json]] | None = None  # chain -> its rules, when we know them exactly


def existing_from_listing(items: Iterable[Json], family: str, table: str) -> Existing:
    """Parse the objects of `nft -j -t list table FAMILY TABLE` (terse: no set elements)."""
    ex = Existing()
    for it in items:
        if "chain" in it:
            c = it["chain"]
            if c.get("family") == family and c.get("table") == table:
                ex.chains[c["name"]] = {k: c[k] for k in ("type", "hook", "prio", "policy", "dev")
                                        if k in c}
        elif "set" in it:
            s = it["set"]
            if s.get("family") == family and s.get("table") == table:
                ex.sets[s["name"]] = s
        elif "counter" in it:
            c = it["counter"]
            if c.get("family") == family and c.get("table") == table:
                ex.counters.add(c["name"])
    return ex


def existing_from_rendered(t: Table) -> Existing:
    """What the kernel holds in table `t` right after we installed it: the data plane plans the
    next transaction from this instead of listing the table again (nft.NftDataPlane._commit)."""
    rules: dict[str, list[Json]] = {n: [] for n in t.chains}
    for chain, expr in t.rules:
        rules.setdefault(chain, []).append(expr)
    return Existing(chains={n: dict(t.base.get(n, {})) for n in t.chains},
                    sets={n: dict(d) for n, d in t.sets.items()}, counters=set(t.counters), rules=rules)


def _same_set(have: Json, want: Json) -> bool:
    def norm_type(v: Any) -> tuple:
        return tuple(v) if isinstance(v, list) else (v,)
    flags_have = set(have.get("flags", [])) - {"dynamic"}
    flags_want = set(want.get("flags", [])) - {"dynamic"}
    return (norm_type(have.get("type")) == norm_type(want.get("type")) and flags_have == flags_want
            and have.get("timeout") == want.get("timeout") and have.get("size") == want.get("size"))


def _same_hook(have: Json, want: Json) -> bool:
    if not want:
        return not have.get("hook")
    # nftables 1.0.6 lists a netdev base chain without its "dev" (measured); ours are one table
    # per device, named for it, so the table already says which one
    return all(have.get(k) == v for k, v in want.items() if not (k == "dev" and "dev" not in have))


def plan(existing: Mapping[tuple[str, str], Existing], rendered: Rendered) -> list[Json]:
    """One transaction from `existing` (our tables only) to `rendered`: tables we no longer need
    are deleted; in the others obsolete chains, sets and counters are deleted, new ones added,
    and the chains refilled (flushed, their rules re-added): every chain when `existing` came
    from a listing, only those whose rules changed or that used a deleted object when it came
    from what we installed (Existing.rules). Dynamic sets and counters that are still wanted
    with the same definition are kept, with their elements and values."""
    cmds: list[Json] = []
    for key in sorted(existing):
        if key not in rendered.tables:
            cmds.append({"delete": {"table": {"family": key[0], "name": key[1]}}})
    for key in sorted(rendered.tables):
        t = rendered.tables[key]
        ex = existing.get(key)
        if ex is None:
            cmds += table_commands(t)
            continue
        cmds.append({"add": {"table": {"family": t.family, "name": t.name}}})
        keep_chain = {n for n in t.chains if n in ex.chains and _same_hook(ex.chains[n], t.base.get(n, {}))}
        keep_set = {n for n in t.sets if n in ex.sets and _same_set(ex.sets[n], t.sets[n])}
        refill = _refill(ex, t, keep_chain, keep_set)
        for name in ex.chains:
            if name in refill or name not in keep_chain:
                cmds.append({"flush": _obj(t, "chain", name=name)})
        for name in ex.chains:
            if name not in keep_chain:
                cmds.append({"delete": _obj(t, "chain", name=name)})
        for name in ex.sets:
            if name not in keep_set:
                cmds.append({"delete": _obj(t, "set", name=name)})
        for name in sorted(ex.counters - set(t.counters)):
            cmds.append({"delete": _obj(t, "counter", name=name)})
        for n in t.counters:
            if n not in ex.counters:
                cmds.append({"add": _obj(t, "counter", name=n)})
        for n in t.sets:
            if n not in keep_set:
                cmds.append({"add": _set_obj(t, n)})
        for n in t.chains:
            if n not in keep_chain:
                cmds.append({"add": _chain_obj(t, n)})
        for chain, expr in t.rules:
            if chain in refill or chain not in keep_chain:
                cmds.append({"add": _obj(t, "rule", chain=chain, expr=expr)})
    return cmds


def _refill(ex: Existing, t: Table, keep_chain: set[str], keep_set: set[str]) -> set[str]:
    """The kept chains whose rules must be flushed and added again."""
    if ex.rules is None:
        return set(keep_chain)
    gone = ((set(ex.chains) - keep_chain) | (set(ex.sets) - keep_set) | (ex.counters - set(t.counters)))
    gone_refs = gone | {"@" + n for n in gone}
    new_rules: dict[str, list[Json]] = {}
    for chain, expr in t.rules:
        new_rules.setdefault(chain, []).append(expr)
    out = set()
    for name in keep_chain:
        old = ex.rules.get(name, [])
        if old != new_rules.get(name, []) or (gone and not gone_refs.isdisjoint(_strings(old))):
            out.add(name)
    return out


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value: names of sets ("@name"), counters and chains a rule uses."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def set_owners(desired: DesiredState) -> dict[str, tuple[ServiceState, RealState, str]]:
    """Set name (without family and table) -> (service, real, kind): kind "flow", "fin" or
    "persist". What `lvs -c` needs to name a set's elements, on the active or a backup."""
    out: dict[str, tuple[ServiceState, RealState, str]] = {}
    for svc in desired.services:
        s = tag(svc.key)
        for r in svc.reals:
            sr = f"{s}_{real_tag(r)}"
            for kind in ("flow", "fin", "persist"):
                out[f"{kind}_{sr}"] = (svc, r, kind)
    return out


HOLD_SUFFIX = "_hold"


def hold_commands(desired: DesiredState, table: str = TABLE) -> list[Json]:
    """The hold table of a backup (flow sync, daemon/flowsync.py): `table inet <table>_hold`,
    which drops every TCP packet addressed to a direct-routing service. At a takeover the VIP
    comes up before the balancer's ruleset is in (tens of ms; with many synced entries to load,
    up to seconds); a mid-flow packet in that window would reach the director's own stack and
    draw a RST that kills the connection, a SYN a RST that refuses it. Dropped instead, either is
    retransmitted by the client into the balancer. Once the ruleset is in, its ingress chains
    forward the service's packets before prerouting; its first transaction deletes this table.
    Empty list: no DR TCP service (nothing to hold)."""
    name = table + HOLD_SUFFIX
    rules: list[Json] = []
    for svc in desired.services:
        if svc.protocol != "tcp" or svc.address is None or not any(r.method == "gate" for r in svc.reals):
            continue
        fam = _ipfam(svc.ipv6)
        rules.append({"add": {"rule": {"family": "inet", "table": name, "chain": "prerouting", "expr": [
            match(payload(fam, "daddr"), svc.address), match(payload("tcp", "dport"), svc.port),
            {"drop": None}]}}})
    if not rules:
        return []
    return [{"add": {"table": {"family": "inet", "name": name}}},
            {"delete": {"table": {"family": "inet", "name": name}}},
            {"add": {"table": {"family": "inet", "name": name}}},
            {"add": {"chain": {"family": "inet", "table": name, "name": "prerouting", "type": "filter",
                               "hook": "prerouting", "prio": -300, "policy": "accept"}}}] + rules


def is_ours(family: str, name: str, table: str = TABLE) -> bool:
    """Tables this data plane owns: `ip|ip6 <table>`, `netdev <table>_<dev>` and flow sync's
    `inet <table>_hold`."""
    if family == "inet":
        return name == table + HOLD_SUFFIX
    if family in ("ip", "ip6"):
        return name == table
    if family == "netdev":
        return name.startswith(table + "_")
    return False
