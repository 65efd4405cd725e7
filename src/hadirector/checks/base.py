"""Health checks: what a probe is, and the registry of probes.

How it works:
- A *probe* is an async function `probe(target, ctx) -> ProbeResult`. It talks to one real server
  once and says up or down (and why). Each check kind is one module of `checks/probes/` that
  registers itself with `@register("name")`; the registry imports every module there the first
  time a probe is looked up (as resources/base.py finds its agents), so adding a check kind means
  adding one file. `probe_for(target, kind)` picks a probe the way ldirectord's `_check_real`
  does: checktype first, then (for negotiate) the service.
- A `CheckTarget` is everything a probe needs about one real of one virtual service, resolved once
  from the frozen config (ldirectord `ld_setup`: check port, URL, timeouts).
- What a real's results mean over time (rise, fall, combined checks) is checks/risefall.py; when
  checks run is checks/plan.py; checks/scheduler.py drives both.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import pkgutil
from dataclasses import dataclass
from typing import Awaitable, Callable

from ..config.model import PORT_SERVICES, Real, RealKey, VirtualService

log = logging.getLogger(__name__)

# ldirectord ld_service_to_port: the port a service implies when the real has none (fwmark)
SERVICE_PORTS = {svc: port for port, svc in PORT_SERVICES.items()}


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
    key = vs.real_key(real)
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

# ldirectord _check_real: which negotiate probe serves which service; each probe module says which
# services it speaks when it registers (`@register("http", services=("http", "https", ...))`)
NEGOTIATE_BY_SERVICE: dict[str, str] = {}


def register(name: str, services: tuple[str, ...] = ()) -> Callable[[Probe], Probe]:
    def deco(fn: Probe) -> Probe:
        if name in PROBES and PROBES[name] is not fn:
            raise ValueError(f"check kind {name!r} is registered twice")
        PROBES[name] = fn
        for svc in services:
            other = NEGOTIATE_BY_SERVICE.setdefault(svc, name)
            if other != name:
                raise ValueError(f"service {svc!r} is claimed by the {other} and the {name} checks")
        return fn
    return deco


_loaded = False


def load_probes() -> dict[str, Probe]:
    """Import every module of checks/probes/ (once) so that each registers itself. A module that
    fails to import is logged and skipped: one broken check kind does not take the others down."""
    global _loaded
    if not _loaded:
        _loaded = True
        from . import probes
        for mod in pkgutil.iter_modules(probes.__path__):
            if mod.name.startswith("_"):
                continue  # helpers shared by the probes
            try:
                importlib.import_module(f"{probes.__name__}.{mod.name}")
            except Exception as e:  # noqa: BLE001 - report and go on
                log.error("check module %s did not load: %s", mod.name, e)
    return PROBES


def probe_name(target: CheckTarget, kind: str) -> str:
    """The registered probe for one check of `kind` (connect or negotiate for combined checks)."""
    if kind == "negotiate":
        load_probes()
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
    load_probes()
    return FAST_PROBES.get(probe_name(target, kind))


def probe_for(target: CheckTarget, kind: str) -> Probe:
    load_probes()
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
