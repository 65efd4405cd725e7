"""The balancer's desired state: plain frozen data computed from the configuration and health.

How it works: `build_desired(balancer, health)` is a pure function. For every virtual service of
the configuration it lists the real servers with the state health gives them, applying
ldirectord's rules (ldirectord `quiescent`, `fallback`):
- a healthy real is `up` with its configured weight (or the weight a check set, e.g. an external
  check's exit code with `external_weight`);
- a failed real with `quiescent = yes` is `quiescent`: kept in the table with weight 0, so open
  connections go on and no new ones come (ldirectord sets the weight to 0 rather than removing);
- a failed real with `quiescent = no` is `down`: removed from the table;
- the fallback (sorry) server is in the table, weight 1, only while no real is available (no real
  up with weight > 0);
- `checktype = on` / `off` reach this function through the health map: `initial_health()` (which
  BalancerDriver starts from) sets such reals up / down for good;
- keepalived `quorum`: while a service's quorum is lost (tracked with its hysteresis by the health
  checks, passed in as `quorum_lost`) and it has a fallback, the fallback replaces the reals.

A data plane installs `ServiceState.installed` (the up and quiescent reals, plus the fallback when
active) and nothing else; `down` reals are listed only so status can say why they are missing.
Data planes receive the whole `DesiredState` with `apply(desired)` and diff it against what they
have. Services are keyed by ipvsadm's name for them ("TCP 192.0.2.1:80", "FWM 5"), reals by
(address, port).

Health is a mapping `(service key, real address, real port) -> RealHealth | bool`. A real missing
from the map is up, unless its service has `alpha` set (keepalived: reals start down until their
first successful check).
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Iterable, Literal, Mapping

from ..config.model import Balancer, Fallback, Real, VirtualService
from .persistence import netmask_prefix
from .schedulers import SCHEDULERS, sched_flag_bits

RealStatus = Literal["up", "down", "quiescent"]
Method = Literal["gate", "masq", "ipip", "local"]

# ipvsadm's Forward column (ipvsadm.c fwd_name)
FORWARD_NAMES = {"gate": "Route", "masq": "Masq", "ipip": "Tunnel", "local": "Local"}

FALLBACK_WEIGHT = 1  # ldirectord adds the fallback server with weight 1


@dataclass(frozen=True, slots=True)
class RealHealth:
    """What the health checks say about one real of one service."""

    up: bool
    weight: int | None = None  # a weight set by the check (external_weight), else the configured one


HealthKey = tuple[str, str, int]  # (service key, real address, real port)


@dataclass(frozen=True, slots=True)
class RealState:
    address: str
    port: int
    method: Method
    weight: int  # the weight to install: 0..65535 (0 = quiescent, no new connections)
    status: RealStatus
    upper_threshold: int = 0  # ipvsadm -x; 0 = none
    lower_threshold: int = 0  # ipvsadm -y
    fallback: bool = False  # this is the service's fallback (sorry) server

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)

    @property
    def forward(self) -> str:
        """ipvsadm's Forward column. IPVS marks a destination whose address is local to the
        director as Local whatever the method (__ip_vs_update_dest: RTN_LOCAL ->
        IP_VS_CONN_F_LOCALNODE); a pure function knows that for loopback addresses only."""
        if self.method != "local" and ipaddress.ip_address(self.address).is_loopback:
            return "Local"
        return FORWARD_NAMES[self.method]


@dataclass(frozen=True, slots=True)
class ServiceState:
    key: str  # ipvsadm's name: "TCP 192.0.2.1:80", "UDP [2001:db8::1]:53", "FWM 5"
    protocol: Literal["tcp", "udp", "fwm"]
    address: str | None
    port: int | None
    fwmark: int | None
    ipv6: bool
    scheduler: str
    sched_flags: tuple[str, ...] = ()  # ipvsadm -b names: sh-port, mh-fallback, flag-1 ...
    persistent_ms: int | None = None  # ipvsadm -p in milliseconds; None = not persistent
    netmask: int | None = None  # persistence granularity as a prefix length (None = host)
    ops: bool = False  # one-packet scheduling (ipvsadm -o, UDP only)
    quiescent: bool = False
    reals: tuple[RealState, ...] = ()  # every configured real, in configuration order
    fallback: RealState | None = None  # the fallback server while it is active, else None

    @property
    def installed(self) -> tuple[RealState, ...]:
        """What the data plane's table holds: up and quiescent reals, then the active fallback."""
        out = tuple(r for r in self.reals if r.status != "down")
        return out + ((self.fallback,) if self.fallback is not None else ())

    @property
    def available(self) -> bool:
        """At least one real can take new connections (fallback excluded)."""
        return any(r.status == "up" and r.weight > 0 for r in self.reals)

    @property
    def persistent_s(self) -> int | None:
        """The persistence timeout as ipvsadm shows it (whole seconds, rounded up)."""
        return None if self.persistent_ms is None else -(-self.persistent_ms // 1000)

    @property
    def family(self) -> int:
        return 6 if self.ipv6 else 4

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reals"] = [asdict(r) for r in self.reals]
        d["fallback"] = asdict(self.fallback) if self.fallback is not None else None
        d["sched_flags"] = list(self.sched_flags)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "ServiceState":
        d = dict(d)
        d["reals"] = tuple(RealState(**r) for r in d.get("reals", ()))
        d["fallback"] = RealState(**d["fallback"]) if d.get("fallback") else None
        d["sched_flags"] = tuple(d.get("sched_flags", ()))
        return cls(**d)


@dataclass(frozen=True, slots=True)
class DesiredState:
    services: tuple[ServiceState, ...] = ()

    def service(self, key: str) -> ServiceState:
        for s in self.services:
            if s.key == key:
                return s
        raise KeyError(key)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.services)

    def to_dict(self) -> dict:
        return {"services": [s.to_dict() for s in self.services]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "DesiredState":
        return cls(services=tuple(ServiceState.from_dict(s) for s in d.get("services", ())))


def service_key(vs: VirtualService) -> str:
    """The key of a virtual service: ipvsadm's way of naming it (model.VirtualService.name)."""
    return vs.name


def real_port(vs: VirtualService, real: Real | Fallback) -> int:
    """A real's port; a real without one uses the virtual's port, 0 for fwmark services (as
    ipvsadm does)."""
    if real.port is not None:
        return real.port
    return vs.port if vs.port is not None else 0


def health_key(vs: VirtualService, real: Real) -> HealthKey:
    return (service_key(vs), real.address, real_port(vs, real))


def _health(value: RealHealth | bool | None, alpha: bool) -> RealHealth:
    if value is None:
        return RealHealth(up=not alpha)
    if isinstance(value, bool):
        return RealHealth(up=value)
    return value


def build_service(vs: VirtualService, health: Mapping[HealthKey, RealHealth | bool] | None = None,
                  where: str = "balancer.virtual", quorum_up: bool = True) -> ServiceState:
    """The desired state of one virtual service (see the module text for the rules)."""
    health = health or {}
    if vs.scheduler not in SCHEDULERS:
        raise ValueError(f"{where}.scheduler: unknown scheduler {vs.scheduler!r}")
    try:
        sched_flag_bits(vs.schedflags)
    except ValueError as exc:
        raise ValueError(f"{where}.schedflags: {exc}") from None
    prefix = None
    if vs.persistent is not None:
        if vs.persistent <= 0:
            raise ValueError(f"{where}.persistent: expected a positive timeout, got {vs.persistent} ms")
        try:
            prefix = netmask_prefix(vs.netmask, vs.ipv6)
        except ValueError as exc:
            raise ValueError(f"{where}.netmask: {exc}") from None
    key = service_key(vs)
    withdraw = not quorum_up and vs.fallback is not None
    reals: list[RealState] = []
    for r in vs.reals:
        port = real_port(vs, r)
        h = _health(health.get((key, r.address, port)), vs.alpha)
        weight = r.weight if h.weight is None else h.weight
        if not 0 <= weight <= 65535:
            raise ValueError(f"{where}: weight {weight} for real {r.address}:{port} is outside 0..65535")
        if h.up and withdraw:
            status = "down"  # keepalived: quorum lost, the sorry server replaces the reals
        elif h.up:
            status: RealStatus = "up"
        elif vs.quiescent:
            status, weight = "quiescent", 0
        else:
            status = "down"
        reals.append(RealState(address=r.address, port=port, method=r.method, weight=weight,
                               status=status, upper_threshold=r.upper_threshold,
                               lower_threshold=r.lower_threshold))
    fallback = None
    if vs.fallback is not None and not any(r.status == "up" and r.weight > 0 for r in reals):
        fb = vs.fallback
        fallback = RealState(address=fb.address, port=real_port(vs, fb), method=fb.method,
                             weight=FALLBACK_WEIGHT, status="up", fallback=True)
        # a fallback that is also a configured real (e.g. localhost) replaces that entry
        reals = [r for r in reals if r.key != fallback.key or r.status == "down"]
    return ServiceState(
        key=key, protocol=vs.protocol, address=vs.address, port=vs.port, fwmark=vs.fwmark,
        ipv6=vs.ipv6, scheduler=vs.scheduler, sched_flags=tuple(vs.schedflags),
        persistent_ms=vs.persistent, netmask=prefix if vs.netmask is not None else None,
        ops=vs.ops, quiescent=vs.quiescent, reals=tuple(reals), fallback=fallback)


def build_desired(balancer: Balancer | None,
                  health: Mapping[HealthKey, RealHealth | bool] | None = None,
                  quorum_lost: Iterable[str] = ()) -> DesiredState:
    """The whole balancer's desired state. Raises ValueError naming the service on bad input.
    `quorum_lost`: keys of services whose keepalived-style quorum is lost (the health checks
    track it, with its hysteresis); such a service with a fallback serves only the fallback."""
    if balancer is None:
        return DesiredState()
    lost = set(quorum_lost)
    services = []
    for i, vs in enumerate(balancer.virtual):
        services.append(build_service(vs, health, where=f"balancer.virtual.{i}",
                                      quorum_up=service_key(vs) not in lost))
    return DesiredState(services=tuple(services))


UNCHECKED = ("on", "off")  # ldirectord checktypes that run no check


def initial_health(balancer: Balancer | None) -> dict[HealthKey, RealHealth]:
    """Health before any check ran: every real up, or down where `alpha` is set. The checktypes
    that never check fix it for good: `on` always up, `off` always down (ldirectord: "no real
    servers will be activated")."""
    out: dict[HealthKey, RealHealth] = {}
    if balancer is None:
        return out
    for vs in balancer.virtual:
        up = vs.checktype == "on" if vs.checktype in UNCHECKED else not vs.alpha
        for r in vs.reals:
            out[health_key(vs, r)] = RealHealth(up=up)
    return out


@dataclass(frozen=True, slots=True)
class ServiceDiff:
    """What changed between two desired states, for data planes that apply deltas."""

    added: tuple[ServiceState, ...] = ()
    removed: tuple[ServiceState, ...] = ()
    changed: tuple[tuple[ServiceState, ServiceState], ...] = field(default=())  # (old, new)


def diff(old: DesiredState, new: DesiredState) -> ServiceDiff:
    old_by = {s.key: s for s in old.services}
    new_by = {s.key: s for s in new.services}
    return ServiceDiff(
        added=tuple(s for k, s in new_by.items() if k not in old_by),
        removed=tuple(s for k, s in old_by.items() if k not in new_by),
        changed=tuple((old_by[k], s) for k, s in new_by.items() if k in old_by and old_by[k] != s),
    )
