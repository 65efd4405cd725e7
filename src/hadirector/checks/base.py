"""Health checks: what a probe is, the registry of probes, and the pure rise/fall core.

How it works:
- A *probe* is an async function `probe(target, ctx) -> ProbeResult`. It talks to one real server
  once and says up or down (and why). Each check kind lives in its own module and registers itself
  with `@register("name")`; `probe_for(target, kind)` picks one the way ldirectord's `_check_real`
  does: checktype first, then (for negotiate) the service.
- A `CheckTarget` is everything a probe needs about one real of one virtual service, resolved once
  from the frozen config (ldirectord `ld_setup`: check port, URL, timeouts).
- `RiseFall` is the pure per-real state machine fed with probe results and `now`: `failurecount`
  consecutive failures mark an up real down (ldirectord `_service_down` soft failures), `rise`
  consecutive successes mark a down real up (HAProxy `rise`; ldirectord has rise = 1). With
  `alpha` (keepalived) a real starts down and its first success brings it up; otherwise it starts
  up. It never reads the clock and returns the transitions it made.
- `CombinedCycle` is ldirectord's `checktype = N`: N connect checks, then one negotiate check.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Awaitable, Callable, NamedTuple

from ..config.model import PORT_SERVICES, Real, VirtualService

# ldirectord ld_service_to_port: the port a service implies when the real has none (fwmark)
SERVICE_PORTS = {svc: port for port, svc in PORT_SERVICES.items()}


class RealKey(NamedTuple):
    """Names one real server of one virtual service: (`TCP 198.18.0.100:80`, `198.18.1.11`, 80)."""

    virtual: str
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port} of {self.virtual}"


def real_key(vs: VirtualService, real: Real) -> RealKey:
    return RealKey(vs.name, real.address, vs.real_port(real) or 0)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    reason: str = ""
    weight: int | None = None  # external check with external_weight: weight to set (keepalived misc_dynamic)


UP = ProbeResult(True, "ok")


@dataclass(frozen=True, slots=True)
class CheckTarget:
    """One real as its check sees it. Times are seconds (floats); texts are ldirectord's, resolved."""

    key: RealKey
    checktype: str  # connect, negotiate, combined, ping, off, on, external, external-perl
    service: str  # for negotiate: http, https, smtp, ... ; "none" = always up
    protocol: str  # tcp, udp, fwm: the virtual service's protocol (connect over udp = ping, as ldirectord)
    address: str  # the real's address
    port: int  # the port to check (ldirectord ld_checkport: checkport, else real port, else the service's)
    vip: str  # virtual address, or the fwmark for fwmark services (external check argument)
    vport: int  # virtual port (0 for fwmark)
    rport: int  # the real's own port (external check argument)
    checktimeout: float
    negotiatetimeout: float
    request: str = "/"
    receive: str = ""
    virtualhost: str | None = None
    httpmethod: str = "GET"
    checkcommand: str = "/bin/true"
    login: str = ""
    passwd: str = ""
    database: str = ""
    secret: str = ""
    status_codes: tuple[int, ...] = ()
    tls_verify: bool = False
    external_weight: bool = False
    num_connects: int = 0

    @property
    def request_text(self) -> str:
        """ldirectord keeps requests with a leading '/' and strips it for non-HTTP services."""
        return self.request[1:] if self.request.startswith("/") else self.request

    @property
    def family_v6(self) -> bool:
        return ":" in self.address

    def timeout_for(self, kind: str) -> float:
        """negotiate checks are bounded by negotiatetimeout, connect/ping/external by checktimeout
        (ldirectord man page); ldirectord's ldap and radius checks use checktimeout for their alarm."""
        if kind == "negotiate" and self.service not in ("ldap", "ldaps", "radius"):
            return self.negotiatetimeout
        return self.checktimeout


def target_for(vs: VirtualService, real: Real) -> CheckTarget:
    """Resolve a real's check parameters as ldirectord `ld_setup` and `ld_checkport` do."""
    key = real_key(vs, real)
    service = vs.service or "none"
    if vs.checkport is not None:
        port = vs.checkport
    elif key.port > 0:
        port = key.port
    else:
        port = SERVICE_PORTS.get(service, 0)
    # a per-real request/receive pair overrides the virtual's (ldirectord `real = ... "req" "recv"`)
    if real.request is not None and real.receive is not None:
        request, receive = real.request, real.receive
    else:
        request = real.request if real.request is not None else vs.request
        receive = vs.receive
    checktype = vs.checktype
    if checktype == "combined" and vs.num_connects <= 0:
        checktype = "negotiate"
    return CheckTarget(
        key=key, checktype=checktype, service=service, protocol=vs.protocol,
        address=real.address, port=port,
        vip=vs.address if vs.address is not None else str(vs.fwmark), vport=vs.port or 0,
        rport=key.port,
        checktimeout=vs.effective_checktimeout() / 1000, negotiatetimeout=vs.effective_negotiatetimeout() / 1000,
        request=request, receive=receive, virtualhost=vs.virtualhost, httpmethod=vs.httpmethod,
        checkcommand=vs.checkcommand, login=vs.login, passwd=vs.passwd, database=vs.database,
        secret=vs.secret, status_codes=tuple(vs.status_codes), tls_verify=vs.tls_verify,
        external_weight=vs.external_weight, num_connects=vs.num_connects,
    )


# --------------------------------------------------------------------------- registry

Probe = Callable[[CheckTarget, "ProbeContext"], Awaitable[ProbeResult]]
PROBES: dict[str, Probe] = {}
# Optional callback forms of a probe, for the scheduler's hot path (no task per check):
# start(target, ctx, loop, timeout, done(result, timed_out)) -> handle with cancel(), or None when done already
FAST_PROBES: dict[str, Callable] = {}

# ldirectord _check_real: which negotiate probe serves which service
NEGOTIATE_BY_SERVICE = {
    "http": "http", "https": "http", "http_proxy": "http",
    "pop": "pop", "pops": "pop", "imap": "imap", "imaps": "imap",
    "smtp": "smtp", "submission": "smtp", "ftp": "ftp", "ldap": "ldap", "ldaps": "ldap",
    "nntp": "nntp", "dns": "dns", "sip": "sip", "radius": "radius", "mysql": "mysql",
    "pgsql": "pgsql", "simpletcp": "simpletcp", "none": "none",
    # oracle: no client here; ldirectord needs DBD::Oracle. We check that the listener accepts.
    "oracle": "connect",
}


def register(name: str) -> Callable[[Probe], Probe]:
    def deco(fn: Probe) -> Probe:
        if name in PROBES and PROBES[name] is not fn:
            raise ValueError(f"check kind {name!r} is registered twice")
        PROBES[name] = fn
        return fn
    return deco


_loaded = False


def load_all() -> None:
    """Import every check module so that each registers itself."""
    global _loaded
    _loaded = True
    from . import (connect, dns, external, ftp, http, imap, ldap, mysql, nntp, none, pgsql,  # noqa: F401
                   ping, pop, radius, simpletcp, sip, smtp)


def probe_name(target: CheckTarget, kind: str) -> str:
    """The registered probe for one check of `kind` (connect or negotiate for combined checks)."""
    if kind == "negotiate":
        return NEGOTIATE_BY_SERVICE.get(target.service, "none")
    if kind == "connect":
        # ldirectord: a connect check of a UDP service is a ping (_check_real)
        return "ping" if target.protocol == "udp" else "connect"
    if kind in ("external", "external-perl"):
        return "external"  # external-perl scripts are run as external commands (same interface)
    if kind in ("ping", "on", "off"):
        return kind
    raise ValueError(f"unknown check kind {kind!r}; expected connect, negotiate, ping, external, on or off")


def fast_probe_for(target: CheckTarget, kind: str) -> Callable | None:
    if not _loaded:
        load_all()
    return FAST_PROBES.get(probe_name(target, kind))


def probe_for(target: CheckTarget, kind: str) -> Probe:
    if not _loaded:
        load_all()
    name = probe_name(target, kind)
    try:
        return PROBES[name]
    except KeyError:
        raise ValueError(f"no probe registered for {name!r} (service {target.service})") from None


class ProbeContext:
    """Resources shared by the probes of one scheduler (the connect engine). Closed at stop."""

    def __init__(self) -> None:
        self.hostname = _hostname()
        self.extras: dict = {}  # per-probe-kind shared state (the connect engine), each with close()

    async def close(self) -> None:
        for extra in self.extras.values():
            extra.close()
        self.extras.clear()


def _hostname() -> str:
    import socket
    return socket.gethostname()


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- rise/fall core

@dataclass(frozen=True, slots=True)
class Transition:
    """A real changed state (or, while up, its dynamic weight)."""

    key: RealKey
    up: bool
    weight: int | None
    reason: str
    at: float
    kind: str  # "up", "down" or "weight"


@dataclass(slots=True)
class RiseFall:
    """Consecutive-result counter of one real. Pure: fed `now`, returns transitions.

    Transition table (state, outcome) -> action, checked in `on_result`:
      (up,   ok)   -> reset failures; a new dynamic weight is reported as a "weight" transition
      (up,   fail) -> failures += 1; at `failurecount` go down   (ldirectord _service_down)
      (down, ok)   -> successes += 1; at `rise` go up (first success when still never-up with alpha)
      (down, fail) -> reset successes
      forced down  -> down at once, counters reset (ldirectord maintenancedir, checktype off)
    """

    key: RealKey
    failurecount: int = 1
    rise: int = 1
    up: bool = True
    weight: int | None = None  # dynamic weight from the last successful check, None = configured
    failures: int = 0
    successes: int = 0
    awaiting_first: bool = False  # alpha: down until the first success
    last_ok: bool | None = None
    last_reason: str = "not checked yet"
    last_check: float | None = None
    last_change: float | None = None
    checks: int = 0

    @classmethod
    def initial(cls, key: RealKey, failurecount: int, rise: int, alpha: bool, now: float) -> "RiseFall":
        if failurecount < 1 or rise < 1:
            raise ValueError(f"{key}: failurecount and rise must be at least 1, got {failurecount} and {rise}")
        return cls(key=key, failurecount=failurecount, rise=rise, up=not alpha, awaiting_first=alpha,
                   last_reason="alpha: down until the first successful check" if alpha else "not checked yet",
                   last_change=now)

    def retune(self, failurecount: int, rise: int) -> None:
        """Reload: new thresholds, same state and counters."""
        self.failurecount, self.rise = failurecount, rise

    def on_result(self, ok: bool, reason: str, now: float, weight: int | None = None) -> list[Transition]:
        self.checks += 1
        self.last_ok, self.last_reason, self.last_check = ok, reason, now
        handler = _TABLE.get((self.up, ok))
        if handler is None:  # unreachable with bools, kept as the table's contract
            raise ValueError(f"no transition for state up={self.up} outcome ok={ok}")
        return handler(self, reason, now, weight)

    def force_down(self, reason: str, now: float) -> list[Transition]:
        self.last_ok, self.last_reason, self.last_check = False, reason, now
        self.failures = self.successes = 0
        self.awaiting_first = False
        if not self.up:
            return []
        self.up = False
        self.last_change = now
        return [Transition(self.key, False, self.weight, reason, now, "down")]

    # -- table entries
    def _up_ok(self, reason: str, now: float, weight: int | None) -> list[Transition]:
        self.failures = 0
        # weight None = keep the current one (keepalived misc_dynamic: exit 0 leaves the weight)
        if weight is not None and weight != self.weight:
            self.weight = weight
            return [Transition(self.key, True, weight, reason, now, "weight")]
        return []

    def _up_fail(self, reason: str, now: float, weight: int | None) -> list[Transition]:
        self.failures += 1
        if self.failures < self.failurecount:
            return []  # ldirectord "Soft failure real server ... failure n/failurecount"
        self.up, self.failures, self.successes = False, 0, 0
        self.last_change = now
        return [Transition(self.key, False, self.weight, reason, now, "down")]

    def _down_ok(self, reason: str, now: float, weight: int | None) -> list[Transition]:
        self.successes += 1
        if weight is not None:
            self.weight = weight
        if self.successes < self.rise and not self.awaiting_first:
            return []
        self.up, self.failures, self.successes, self.awaiting_first = True, 0, 0, False
        self.last_change = now
        return [Transition(self.key, True, self.weight, reason, now, "up")]

    def _down_fail(self, reason: str, now: float, weight: int | None) -> list[Transition]:
        self.successes = 0
        return []


_TABLE = {
    (True, True): RiseFall._up_ok,
    (True, False): RiseFall._up_fail,
    (False, True): RiseFall._down_ok,
    (False, False): RiseFall._down_fail,
}


@dataclass(slots=True)
class CombinedCycle:
    """ldirectord `checktype = N`: N connect checks, then one negotiate check.

    ldirectord (`ld_setup`, `_check_real`) starts each real at 999999 connects so the first check
    negotiates; a successful negotiate resets the count to 0, each successful connect adds one, and
    a failed connect sets it back to 999999 so the next check negotiates at once. A failed
    negotiate leaves the count, so negotiation repeats until it succeeds."""

    n: int
    connects: int = field(default=999_999)

    def next_kind(self) -> str:
        return "negotiate" if self.connects >= self.n else "connect"

    def record(self, kind: str, ok: bool) -> None:
        if kind == "negotiate":
            if ok:
                self.connects = 0
        elif ok:
            self.connects += 1
        else:
            self.connects = 999_999
