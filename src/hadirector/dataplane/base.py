"""What every data plane offers, and the statistics it reports.

A data plane makes the running balancer match a `DesiredState` (balancer/state.py):
- `await apply(desired)`: idempotent and diff-based. Services and reals that did not change keep
  their connections, counters and scheduler position; applying the same state twice does nothing.
  A real that left the table (`down`, or no longer configured) is removed; one set to weight 0
  (`quiescent`) stays and only stops getting new connections.
- `stats()`: counters per service and per real as IPVS keeps them (ipvsadm --stats / --rate and
  the ActiveConn/InActConn columns), as a `BalancerStats`.
- `await close()`: stop serving and remove everything the data plane installed.
- `capabilities` (a class attribute, readable without making one): what this kind of data plane
  can install, as data (`Capabilities`). The configuration loader can refuse what the chosen data
  plane cannot do from it, before any failover needs it.
- `unserved`: the services of the last apply that are not served, each an `Unserved` with a
  typed `kind`: UNSUPPORTED (this data plane cannot do what the service asks: a matter of
  configuration, the same on every node) or CANNOT_LISTEN (this node could not bind the service's
  address: the balancer is not doing its job here). Callers test `kind`, never the text.

Counters follow the kernel's meaning (struct ip_vs_kstats): `conns` connections scheduled,
`inpkts`/`inbytes` client -> real, `outpkts`/`outbytes` real -> client. Rates are estimated the
way ip_vs_est.c does: a sample every 2 seconds, smoothed with weight 1/4.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, ClassVar, Mapping

from ..errors import HadirectorError

if TYPE_CHECKING:
    from ..balancer.state import DesiredState


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one kind of data plane can install. Names are the desired state's
    (balancer/state.py): `ServiceState.protocol`, `.scheduler`, `RealState.method`."""

    kind: str  # the `[balancer] dataplane` name: "nft", "proxy"
    protocols: frozenset[str]  # the service protocols it serves: tcp, udp, fwm (firewall mark)
    schedulers: frozenset[str]  # the IPVS schedulers it carries out
    methods: frozenset[str]  # forwarding methods it carries out as configured
    relayed_methods: frozenset[str]  # methods it accepts but carries out as masq (a relay)
    gate_fwmark: bool  # direct routing (gate) reals in a firewall-mark service
    mixed_gate_nat: bool  # gate and masq reals of one service both taking new connections
    gate_port_change: bool  # a gate real on another port than its service
    ops: bool  # one-packet scheduling (ipvsadm -o) as IPVS does it, NAT included
    proxy_protocol: bool  # can send the PROXY protocol header to the reals
    needs_root: bool

    def accepts_method(self, method: str) -> bool:
        return method in self.methods or method in self.relayed_methods


class UnservedKind(enum.Enum):
    UNSUPPORTED = "unsupported"  # the data plane cannot do what the service asks (configuration)
    CANNOT_LISTEN = "cannot-listen"  # binding the service's address failed on this node


@dataclass(frozen=True, slots=True)
class Unserved:
    """A service of the desired state that the data plane does not serve, and why."""

    service: str  # the service key, "FWM 3", "TCP 192.0.2.1:80"
    kind: UnservedKind
    detail: str  # for people: "fwmark services need the kernel data plane (nft)"

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.detail}"

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Counters:
    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0

    def __add__(self, o: "Counters") -> "Counters":
        return Counters(self.conns + o.conns, self.inpkts + o.inpkts, self.outpkts + o.outpkts,
                        self.inbytes + o.inbytes, self.outbytes + o.outbytes)


@dataclass(frozen=True, slots=True)
class Rates:
    """Per second: connections, packets and bytes in each direction (ipvsadm --rate)."""

    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0


@dataclass(frozen=True, slots=True)
class RealStats:
    counters: Counters = Counters()
    rates: Rates = Rates()
    active: int = 0  # ActiveConn: established connections
    inactive: int = 0  # InActConn: connections in any other state (and every UDP flow)
    persist: int = 0  # persistence templates pointing to this real


@dataclass(frozen=True, slots=True)
class ServiceStats:
    counters: Counters = Counters()
    rates: Rates = Rates()
    reals: Mapping[tuple[str, int], RealStats] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BalancerStats:
    services: Mapping[str, ServiceStats] = field(default_factory=dict)

    def service(self, key: str) -> ServiceStats:
        return self.services.get(key, ServiceStats())

    def real(self, service_key: str, real_key: tuple[str, int]) -> RealStats:
        return self.service(service_key).reals.get(real_key, RealStats())

    def to_dict(self) -> dict:
        return {"services": {
            k: {"counters": asdict(s.counters), "rates": asdict(s.rates),
                "reals": [{"address": a, "port": p, "counters": asdict(r.counters),
                           "rates": asdict(r.rates), "active": r.active, "inactive": r.inactive,
                           "persist": r.persist}
                          for (a, p), r in s.reals.items()]}
            for k, s in self.services.items()}}

    @classmethod
    def from_dict(cls, d: Mapping) -> "BalancerStats":
        services = {}
        for k, s in d.get("services", {}).items():
            reals = {(r["address"], r["port"]): RealStats(
                counters=Counters(**r.get("counters", {})), rates=Rates(**r.get("rates", {})),
                active=r.get("active", 0), inactive=r.get("inactive", 0), persist=r.get("persist", 0))
                for r in s.get("reals", ())}
            services[k] = ServiceStats(counters=Counters(**s.get("counters", {})),
                                       rates=Rates(**s.get("rates", {})), reals=reals)
        return cls(services=services)


class RateEstimator:
    """ip_vs_est.c: every 2 s take the counter deltas, turn them into per-second rates and smooth
    them: avg += (rate - avg) / 4. Pure: fed the counters and `now`."""

    INTERVAL = 2.0

    __slots__ = ("last", "last_time", "avg")

    def __init__(self) -> None:
        self.last: Counters | None = None
        self.last_time = 0.0
        self.avg = [0.0] * 5

    def sample(self, c: Counters, now: float) -> None:
        if self.last is None:
            self.last, self.last_time = c, now
            return
        dt = now - self.last_time
        if dt < self.INTERVAL:
            return
        prev = self.last
        deltas = (c.conns - prev.conns, c.inpkts - prev.inpkts, c.outpkts - prev.outpkts,
                  c.inbytes - prev.inbytes, c.outbytes - prev.outbytes)
        avg = self.avg
        for i, dlt in enumerate(deltas):
            avg[i] += (dlt / dt - avg[i]) / 4
        self.last, self.last_time = c, now

    def rates(self) -> Rates:
        # ip_vs_est.c reports inbps/outbps in bytes per second (ipvsadm's InBPS/OutBPS)
        a = self.avg
        return Rates(*(int(x + 0.5) for x in a))


class DataPlane(abc.ABC):
    """The interface the daemon drives; see the module text."""

    name = "abstract"
    capabilities: ClassVar[Capabilities]

    @property
    def unserved(self) -> Mapping[str, Unserved]:
        """Service key -> why that service of the last apply is not served (none by default:
        a data plane that cannot install something raises DataPlaneError from apply)."""
        return {}

    @abc.abstractmethod
    async def apply(self, desired: DesiredState) -> None:
        ...

    @abc.abstractmethod
    def stats(self) -> BalancerStats:
        ...

    @abc.abstractmethod
    async def close(self) -> None:
        ...


class DataPlaneError(HadirectorError):
    """A data plane could not install (part of) the desired state; the message names what.
    Transient unless it says otherwise (a port still taken, a transaction the kernel refused)."""

    transient = True
