"""Configuration + health -> desired state: the one owner of the service rules. Pure.

What a data plane installs is a `DesiredState`: plain frozen data, every virtual service with its
reals (each `up`, `quiescent` or `down`) and its fallback server while that is active. It is
computed here and nowhere else, from the frozen configuration, the health checks' facts and a
little memory per service; data planes apply it (diffing it against what they have) and status
renders it. The checks report facts only (`RealHealth`: up, weight, reason, since); every rule
that turns them into the table is below, each citing the program it follows:

- a real that is up is installed with its configured weight, or the weight its check reported
  (`external_weight`, keepalived misc_dynamic). ldirectord `_restore_service`.
- a real that is down is `quiescent` (kept at weight 0, so its open connections go on) with
  `quiescent = yes`, else `down` (removed). ldirectord `_remove_service`. With `readdquiescent =
  no` a quiescent real that is no longer in the table when it fails is not added back (ldirectord
  `_remove_service`: "Readd Quiescent" only with readdquiescent); hadirector's own data planes
  only lose a real by a decision made here, so only `removed()` (a real taken out of the table
  from outside) makes the difference.
- the fallback (sorry) server is installed, weight 1, while no real is *up*, whatever the up
  reals' weights (ldirectord `fallback_on`/`fallback_off` test `real_status`, the set of reals
  whose check passed; `_status_up` ignores the weight). Every real up at weight 0 therefore means
  no fallback and no new connections, as in ldirectord. It is never quiescent (`_remove_service`
  makes only "real" servers quiescent). A fallback that is also a configured real replaces it.
- a real nobody has checked yet is up, unless the service has `alpha` (keepalived: down until its
  first successful check). `checktype = on`: always up; `off`: never up (ldirectord `_check_real`
  adds no real; its `ld_start` still turns the fallback on).
- keepalived `quorum` (0 = off): the weights of the up reals are summed (`weigh_live_realservers`);
  the quorum is lost when the sum is 0 or below `quorum - hysteresis`, gained again at `quorum +
  hysteresis`, and at start it is up when the sum reaches `quorum + hysteresis`
  (`update_quorum_state`, `set_quorum_states`). While it is lost and the service has a fallback,
  the sorry server replaces the alive reals (`perform_quorum_state`): they are removed, or set to
  weight 0 with `quiescent` (keepalived `ipvs_cmd`: a delete with inhibit_on_failure edits the
  weight to 0). `quorum_down`/`quorum_up` run on each change; at start `quorum_down` runs only
  when the service starts with its quorum lost and has a sorry server ("Starting with quorum down").
- `fallbackcommand` runs as `cmd start|stop vip:vport protocol` when the last real goes down or
  the first comes back, only on a change, and once at start for the current state (ldirectord
  `do_fallback_command` remembers the last status it ran per virtual).

- maintenance (`hadirector real drain|disable|enable`; HAProxy's `set server state
  ready|drain|maint`): a real put in `drain` stays in the table at weight 0 while its check says
  up (its open connections, and persistent clients (IPVS keeps a template to a weight-0
  destination), go on; no new ones), and is as its check says when down; `disabled` is removed
  from the table whatever its check says; `enable` hands it back to its check. A real in
  maintenance is not "up" for the fallback, the quorum's weight sum or the fallbackcommand: with
  every real in maintenance the sorry server answers, as it does when ldirectord's maintenancedir
  forces every real down (_check_real_for_maintenance). The marks come from the cluster
  (cluster/maintenance.py, replicated to every node), so a backup's table has them too.
- only the node that holds the balancer runs the commands (`active`; the health checks and this
  core run on every node, so a backup's state is fresh): while inactive no RunCommand is returned
  (the memory still follows), and `set_active(True)` returns the commands ldirectord's start runs
  for the current state (the fallbackcommand once per service, quorum_down when the quorum is
  lost), as heartbeat starting ldirectord on the new holder would.

`DesiredStateCore` holds the configuration, the latest fact of every real and that memory; each
input (`start`, `on_health`, `reload`, `removed`, `set_maintenance`, `set_active`) returns
actions for the driver: `Apply` a new
desired state, `RunCommand`, `FallbackChanged` (the alert mail), `QuorumChanged` (the log).
`build_desired()` is the same rules without memory, for tests and one-shot tools.

Services are keyed by ipvsadm's name for them ("TCP 192.0.2.1:80", "FWM 5"), reals by
`config.model.RealKey`; health maps `RealKey -> RealHealth` (a bool is read as `RealHealth(up)`).
Nothing here validates the configuration: the model refused every bad value when it was read.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field, replace
from typing import Iterable, Literal, Mapping

from ..config.model import Balancer, RealKey, VirtualService

RealStatus = Literal["up", "down", "quiescent"]
Method = Literal["gate", "masq", "ipip", "local"]

# ipvsadm's Forward column (ipvsadm.c fwd_name)
FORWARD_NAMES = {"gate": "Route", "masq": "Masq", "ipip": "Tunnel", "local": "Local"}

FALLBACK_WEIGHT = 1  # ldirectord fallback_on: _restore_service(..., "1", "fallback")


@dataclass(frozen=True, slots=True)
class RealHealth:
    """What the health checks say about one real (keyed by its `RealKey`): a fact, no policy."""

    up: bool
    weight: int | None = None  # a weight the check set (external_weight), None = the configured one
    reason: str = ""  # the last check's result text (the failure when down)
    since: int = 0  # when `up` last changed, in the checks' clock (ms)


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




HealthMap = Mapping[RealKey, "RealHealth | bool"]
MaintenanceMap = Mapping[RealKey, str]  # RealKey -> "drain" | "disabled"
MAINTENANCE_MODES = ("drain", "disabled")


def service_key(vs: VirtualService) -> str:
    """The key of a virtual service: ipvsadm's way of naming it (model.VirtualService.name)."""
    return vs.name


# --------------------------------------------------------------------------- the rules

@dataclass(frozen=True, slots=True)
class ServiceMemory:
    """What one service remembers between evaluations (see the module text)."""

    quorum_up: bool = True
    fallback_cmd: str | None = None  # "start"/"stop": the fallbackcommand last run
    # reals taken out of the table from outside, with whether each was up then (ldirectord only
    # re-adds such a real on its next change: _service_up/_service_down return early otherwise)
    absent: frozenset[tuple[RealKey, bool]] = frozenset()

    def is_absent(self, key: RealKey) -> bool:
        return any(k == key for k, _ in self.absent)


def real_health(vs: VirtualService, key: RealKey, health: HealthMap) -> RealHealth:
    """A real's health as the rules read it: checktype on/off fix it; unchecked is up unless alpha."""
    if vs.checktype == "on":
        return RealHealth(True, None, "checktype on: not checked")
    if vs.checktype == "off":
        return RealHealth(False, None, "checktype off: never activated")
    h = health.get(key)
    if h is None:
        return RealHealth(not vs.alpha, None, "alpha: down until the first successful check"
                          if vs.alpha else "not checked yet")
    return RealHealth(h) if isinstance(h, bool) else h


def counts_up(vs: VirtualService, key: RealKey, health: HealthMap, maintenance: MaintenanceMap | None) -> bool:
    """Up for the service's rules (fallback, quorum, fallbackcommand): its check says up and it
    is not in maintenance."""
    return real_health(vs, key, health).up and not (maintenance and key in maintenance)


def weight_sum(vs: VirtualService, health: HealthMap, maintenance: MaintenanceMap | None = None) -> int:
    """keepalived weigh_live_realservers: the weights of the reals that are up."""
    total = 0
    for r in vs.reals:
        key = vs.real_key(r)
        h = real_health(vs, key, health)
        if counts_up(vs, key, health, maintenance):
            total += r.weight if h.weight is None else h.weight
    return total


def next_quorum(vs: VirtualService, total: int, was_up: bool | None) -> bool:
    """keepalived update_quorum_state (was_up None = starting: set_quorum_states)."""
    if vs.quorum <= 0:
        return True
    if was_up is None:
        return total >= vs.quorum + vs.hysteresis
    if was_up and (total == 0 or total < vs.quorum - vs.hysteresis):
        return False
    if not was_up and total >= vs.quorum + vs.hysteresis:
        return True
    return was_up


def build_service(vs: VirtualService, health: HealthMap | None = None,
                  memory: ServiceMemory | None = None, maintenance: MaintenanceMap | None = None) -> ServiceState:
    """The desired state of one virtual service. `memory` None: as at start (quorum as
    set_quorum_states computes it, every real in the table)."""
    health = health or {}
    maintenance = maintenance or {}
    quorum_up = memory.quorum_up if memory is not None else next_quorum(
        vs, weight_sum(vs, health, maintenance), None)
    withdraw = not quorum_up and vs.fallback is not None
    reals: list[RealState] = []
    any_up = False
    for r in vs.reals:
        key = vs.real_key(r)
        h = real_health(vs, key, health)
        weight = r.weight if h.weight is None else h.weight
        mode = maintenance.get(key)
        any_up = any_up or (h.up and mode is None)
        if memory is not None and memory.absent and memory.is_absent(key):
            status = "down"
        elif mode == "disabled":
            status = "down"  # HAProxy maint: out of the table
        elif mode == "drain" and (h.up or vs.quiescent):
            status, weight = "quiescent", 0  # HAProxy drain: weight 0, connections go on
        elif mode == "drain":
            status = "down"  # down by its check and not quiescent: removed, as without the drain
        elif h.up and not withdraw:
            status: RealStatus = "up"
        elif vs.quiescent:
            status, weight = "quiescent", 0
        else:
            status = "down"
        reals.append(RealState(address=r.address, port=key.port, method=r.method, weight=weight,
                               status=status, upper_threshold=r.upper_threshold,
                               lower_threshold=r.lower_threshold))
    fallback = None
    if vs.fallback is not None and (not any_up or withdraw):
        fb = vs.fallback
        fallback = RealState(address=fb.address, port=vs.real_port(fb), method=fb.method,
                             weight=FALLBACK_WEIGHT, status="up", fallback=True)
        # a fallback that is also a configured real (e.g. localhost) replaces that entry
        reals = [r for r in reals if r.key != fallback.key or r.status == "down"]
    return ServiceState(
        key=service_key(vs), protocol=vs.protocol, address=vs.address, port=vs.port, fwmark=vs.fwmark,
        ipv6=vs.ipv6, scheduler=vs.scheduler, sched_flags=tuple(vs.schedflags),
        persistent_ms=vs.persistent, netmask=vs.netmask_prefix, ops=vs.ops, quiescent=vs.quiescent,
        reals=tuple(reals), fallback=fallback)


def build_desired(balancer: Balancer | None, health: HealthMap | None = None,
                  memory: Mapping[str, ServiceMemory] | None = None,
                  maintenance: MaintenanceMap | None = None) -> DesiredState:
    """The whole balancer's desired state (see build_service)."""
    if balancer is None:
        return DesiredState()
    memory = memory or {}
    return DesiredState(services=tuple(build_service(vs, health, memory.get(vs.name), maintenance)
                                       for vs in balancer.virtual))


# --------------------------------------------------------------------------- the core

@dataclass(frozen=True, slots=True)
class Apply:
    """Install this desired state (it differs from the last one)."""

    desired: DesiredState


@dataclass(frozen=True, slots=True)
class RunCommand:
    """Run `command` (shell-split) with `args`; `why` is for the log."""

    command: str
    args: tuple[str, ...]
    why: str


@dataclass(frozen=True, slots=True)
class FallbackChanged:
    """A service's fallback server went on or off (ldirectord mails it: emailalert)."""

    virtual: str
    on: bool
    where: str  # address:port of the fallback server


@dataclass(frozen=True, slots=True)
class QuorumChanged:
    virtual: str
    up: bool
    weight: int  # the sum of the up reals' weights
    quorum: int
    hysteresis: int
    starting: bool = False


class DesiredStateCore:
    """The desired state and the memory behind it. Pure: fed facts and `now` (int ms), returns
    actions; never reads a clock, never does I/O.

        core = DesiredStateCore(cfg.balancer)
        actions = core.start(now)                  # Apply + the commands ldirectord runs at start
        actions = core.on_health(key, fact, now)   # a check's fact (RealHealth)
        actions = core.reload(new_balancer, now)   # unchanged reals keep their health
        actions = core.set_maintenance(marks, now) # {RealKey: "drain" | "disabled"}: all of them
        actions = core.set_active(True, now)       # this node holds the balancer now
        core.desired, core.health, core.memory, core.maintenance
    """

    def __init__(self, balancer: Balancer | None, active: bool = True) -> None:
        self.balancer = balancer
        self.health: dict[RealKey, RealHealth] = {}
        self.memory: dict[str, ServiceMemory] = {}
        self.maintenance: dict[RealKey, str] = {}
        self.active = active
        self.desired = DesiredState()
        self._by_name = {vs.name: vs for vs in (balancer.virtual if balancer else ())}
        self.started = False

    def start(self, now: int) -> list:
        """The first evaluation: every service as at start (ldirectord ld_start)."""
        self.started = True
        self.memory.clear()
        return self._evaluate(tuple(self._by_name.values()), now, starting=True)

    def on_health(self, key: RealKey, fact: RealHealth | bool, now: int) -> list:
        """A check changed its verdict (or its dynamic weight) for one real."""
        return self.on_health_many({key: fact}, now)

    def on_health_many(self, facts: Mapping[RealKey, RealHealth | bool], now: int) -> list:
        touched = []
        for key, fact in facts.items():
            vs = self._by_name.get(key.virtual)
            if vs is None:
                continue  # a check of a real that the configuration no longer has
            self.health[key] = RealHealth(fact) if isinstance(fact, bool) else fact
            if vs not in touched:
                touched.append(vs)
        return self._evaluate(tuple(touched), now) if self.started else []

    def removed(self, key: RealKey, now: int) -> list:
        """A real was taken out of the table from outside (the operator's `ipvsadm -d` in
        ldirectord's world). It stays out until its check changes its verdict: coming up it is
        added again (_restore_service); going down it is added back at weight 0 only with
        readdquiescent (_remove_service), else it stays out until it comes up."""
        vs = self._by_name.get(key.virtual)
        if vs is None or key not in {vs.real_key(r) for r in vs.reals}:
            return []
        mem = self.memory.get(vs.name, ServiceMemory())
        up = real_health(vs, key, self.health).up
        self.memory[vs.name] = replace(mem, absent=frozenset(a for a in mem.absent if a[0] != key) | {(key, up)})
        return self._evaluate((vs,), now)

    def set_maintenance(self, marks: MaintenanceMap, now: int) -> list:
        """The reals in maintenance now (every one: a real missing from `marks` is enabled)."""
        for mode in marks.values():
            if mode not in MAINTENANCE_MODES:
                raise ValueError(f"maintenance mode must be one of {', '.join(MAINTENANCE_MODES)}, got {mode!r}")
        new = dict(marks)
        touched = {k.virtual for k in set(new) ^ set(self.maintenance)}
        touched |= {k.virtual for k in new if self.maintenance.get(k) not in (None, new[k])}
        self.maintenance = new
        services = tuple(self._by_name[v] for v in touched if v in self._by_name)
        return self._evaluate(services, now) if self.started else []

    def set_active(self, active: bool, now: int) -> list:
        """This node holds the balancer (or no longer does). Becoming active returns the commands
        for the current state that ldirectord runs when it starts (see the module text)."""
        was, self.active = self.active, active
        if not active or was or not self.started:
            return []
        out: list = []
        for vs in self._by_name.values():
            mem = self.memory.get(vs.name) or ServiceMemory()
            total = weight_sum(vs, self.health, self.maintenance)
            if vs.quorum > 0 and not mem.quorum_up and vs.fallback is not None and vs.quorum_down:
                out.append(RunCommand(vs.quorum_down, (), f"{vs.name}: taking over with quorum down "
                                      f"(weight {total}, quorum {vs.quorum}, hysteresis {vs.hysteresis})"))
            if vs.fallbackcommand and mem.fallback_cmd is not None:
                out.append(self._fallback_command(vs, mem.fallback_cmd))
        return out

    def _fallback_command(self, vs: VirtualService, wanted: str) -> RunCommand:
        where = f"{vs.address}:{vs.port}" if vs.fwmark is None else str(vs.fwmark)
        why = "no real server is up" if wanted == "start" else "a real server is up"
        return RunCommand(vs.fallbackcommand, (wanted, where, vs.protocol), f"{vs.name}: {why}")

    def reload(self, balancer: Balancer | None, now: int) -> list:
        """A new configuration (ldirectord reload runs ld_start again): reals still configured
        keep their health; a service whose settings changed is evaluated as at start."""
        old = self._by_name
        self.balancer = balancer
        self._by_name = {vs.name: vs for vs in (balancer.virtual if balancer else ())}
        keys = {vs.real_key(r) for vs in self._by_name.values() for r in vs.reals}
        self.health = {k: h for k, h in self.health.items() if k in keys}
        changed = []
        for name, vs in self._by_name.items():
            if old.get(name) != vs:
                self.memory.pop(name, None)
                changed.append(vs)
        for name in list(self.memory):
            if name not in self._by_name:
                del self.memory[name]
        if not self.started:
            return []
        return self._evaluate(tuple(changed), now, starting=True)

    # ------------------------------------------------------------------ evaluation

    def _evaluate(self, services: Iterable[VirtualService], now: int, starting: bool = False) -> list:
        out: list = []
        states = {s.key: s for s in self.desired.services}
        changed = False
        for vs in services:
            new = self._service(vs, states.get(vs.name), out, starting)
            changed = changed or states.get(vs.name) != new
            states[vs.name] = new
        if changed or len(states) != len(self._by_name) or set(states) != set(self._by_name):
            order = tuple(states[name] for name in self._by_name if name in states)
            if order != self.desired.services:
                self.desired = DesiredState(services=order)
                out.insert(0, Apply(self.desired))
        return out

    def _service(self, vs: VirtualService, before: ServiceState | None, out: list,
                 starting: bool) -> ServiceState:
        mem = self.memory.get(vs.name)
        first = mem is None
        if first:
            mem = ServiceMemory()
        total = weight_sum(vs, self.health, self.maintenance)
        quorum = next_quorum(vs, total, None if first else mem.quorum_up)
        if first:
            if vs.quorum > 0 and not quorum and vs.fallback is not None:
                # keepalived update_quorum_state(init): "Starting with quorum down"
                out.append(QuorumChanged(vs.name, False, total, vs.quorum, vs.hysteresis, starting=True))
                if vs.quorum_down and self.active:
                    out.append(RunCommand(vs.quorum_down, (), f"{vs.name}: starting with quorum down "
                                          f"(weight {total}, quorum {vs.quorum}, hysteresis {vs.hysteresis})"))
        elif quorum != mem.quorum_up:
            out.append(QuorumChanged(vs.name, quorum, total, vs.quorum, vs.hysteresis))
            cmd = vs.quorum_up if quorum else vs.quorum_down
            if cmd and self.active:
                out.append(RunCommand(cmd, (), f"{vs.name}: quorum {'gained' if quorum else 'lost'} "
                                      f"(weight {total}, quorum {vs.quorum}, hysteresis {vs.hysteresis})"))
        mem = replace(mem, quorum_up=quorum, absent=self._absent_after(vs, mem))
        state = build_service(vs, self.health, mem, self.maintenance)
        any_up = any(counts_up(vs, vs.real_key(r), self.health, self.maintenance) for r in vs.reals)
        wanted = "stop" if any_up else "start"
        if wanted != mem.fallback_cmd:
            if vs.fallbackcommand and self.active:
                out.append(self._fallback_command(vs, wanted))
            mem = replace(mem, fallback_cmd=wanted)
        was_on = before is not None and before.fallback is not None
        if before is not None and not starting and (state.fallback is not None) != was_on:
            fb = state.fallback or before.fallback
            out.append(FallbackChanged(vs.name, state.fallback is not None, f"{fb.address}:{fb.port}"))
        self.memory[vs.name] = mem
        return state

    def _absent_after(self, vs: VirtualService, mem: ServiceMemory) -> frozenset:
        """Reals taken out from outside, after their checks' news (see removed())."""
        out = set()
        for key, was_up in mem.absent:
            up = real_health(vs, key, self.health).up
            if up == was_up:
                out.add((key, was_up))  # no change: ldirectord does nothing, it stays out
            elif not up and not (vs.quiescent and self.balancer.readdquiescent):
                out.add((key, False))  # went down, not re-added: out until it comes up
        return frozenset(out)


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
