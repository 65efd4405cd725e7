"""ipvsadm-style tables of the running balancer (`hadirector lvs`), as pure functions.

`render_lvs(desired, stats, ...)` prints what `ipvsadm -L [-n] [--stats|--rate] [--exact]` prints
for the same table, byte for byte, so scripts that parse `ipvsadm -L -n` keep working: the
formats, column widths, truncation, number rounding and sort order are ipvsadm.c's
(print_title, print_service_entry, print_largenum, libipvs ipvs_cmp_services/ipvs_cmp_dests).
The table is the data plane's: the installed reals of each service (up, quiescent at weight 0,
and the fallback while it is active); reals that are down are not in it, as in IPVS.

`lvs_json(...)` gives the same content as plain data for `--json`. `lvs_snapshot()` is what the
daemon's control socket answers to `{"cmd": "lvs"}`; `decode_snapshot()` reads it back.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable, Mapping

from ..balancer.schedulers import sched_flag_bits, sched_flag_names
from ..balancer.state import DesiredState, RealState, ServiceState
from ..dataplane.base import BalancerStats, Counters, Rates, RealStats

IPVS_VERSION = "1.2.1"  # what ipvsadm reports for every kernel since 2.6
IPVS_TABLE_SIZE = 4096  # the default connection hash table size (ip_vs_conn_tab_bits = 12)

_PROTO_NUM = {"tcp": 6, "udp": 17, "fwm": 0}

Resolver = Callable[[str], str | None]
PortResolver = Callable[[int, str], str | None]


# --------------------------------------------------------------------------- numbers and names

def largenum(i: int, exact: bool = False) -> str:
    """ipvsadm.c print_largenum: 9 columns, K/M/G/T above 100 million unless --exact."""
    if exact:
        s = str(i)
        return s.rjust(9 if len(s) <= 8 else len(s) + 1)
    if i < 100_000_000:
        return f"{i:9d}"
    if i < 1_000_000_000:
        return f"{i // 1000:8d}K"
    if i < 100_000_000_000:
        return f"{i // 1_000_000:8d}M"
    if i < 100_000_000_000_000:
        return f"{i // 1_000_000_000:8d}G"
    return f"{i // 1_000_000_000_000:8d}T"


def _addrport(address: str, port: int, proto: str, numeric: bool,
              host_name: Resolver | None, port_name: PortResolver | None) -> str:
    """ipvsadm.c addrport_to_anyname: host:port, [v6]:port; names unless numeric."""
    v6 = ":" in address
    host, svc = address, str(port)
    if not numeric:
        if host_name is not None:
            host = host_name(address) or address
        if port_name is not None and proto in ("tcp", "udp"):
            svc = port_name(port, proto) or svc
    return f"[{host}]:{svc}" if v6 else f"{host}:{svc}"


def _dotted(prefix: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)


def _service_name(s: ServiceState, numeric: bool, host_name, port_name) -> str:
    if s.fwmark is not None:
        return f"FWM  {s.fwmark}" + (" IPv6" if s.ipv6 else "")
    vname = _addrport(s.address, s.port, s.protocol, numeric, host_name, port_name)
    name = f"{s.protocol.upper():<4} {vname}"
    return name if s.ipv6 else name[:33]  # svc_name[33] = '\0' for IPv4


def _service_sort_key(s: ServiceState):
    # libipvs ipvs_cmp_services: fwmark, family, protocol, address, port
    return (s.fwmark or 0, 10 if s.ipv6 else 2, _PROTO_NUM[s.protocol],
            int(ipaddress.ip_address(s.address)) if s.address else 0, s.port or 0)


def _real_sort_key(r: RealState):
    # libipvs ipvs_cmp_dests: address, port
    a = ipaddress.ip_address(r.address)
    return (a.version, int(a), r.port)


def _flags_text(s: ServiceState) -> str:
    """The Flags column: (scheduler flags), persistent T [mask M], ops (ipvsadm 1.29+ order)."""
    out = ""
    bits = sched_flag_bits(s.sched_flags)
    if bits:
        out += f" ({','.join(sched_flag_names(s.scheduler, bits))})"
    if s.persistent_ms is not None:
        out += f" persistent {s.persistent_s}"
        if s.netmask is not None:
            if not s.ipv6 and s.netmask != 32:
                out += f" mask {_dotted(s.netmask)}"
            elif s.ipv6 and s.netmask != 128:
                out += f" mask {s.netmask}"
    if s.ops:
        out += " ops"
    return out


# --------------------------------------------------------------------------- the table

def render_lvs(desired: DesiredState, stats: BalancerStats | None = None, *, numeric: bool = True,
               mode: str = "list", exact: bool = False, host_name: Resolver | None = None,
               port_name: PortResolver | None = None) -> str:
    """ipvsadm -L output. mode: "list" (default columns), "stats" (--stats) or "rate" (--rate).
    Lines keep ipvsadm's trailing spaces. Ends with a newline."""
    if mode not in ("list", "stats", "rate"):
        raise ValueError(f"mode {mode!r}: expected list, stats or rate")
    stats = stats or BalancerStats()
    lines = [f"IP Virtual Server version {IPVS_VERSION} (size={IPVS_TABLE_SIZE})"]
    if mode == "stats":
        lines.append(f"{'Prot LocalAddress:Port':<33} {'Conns':>8} {'InPkts':>8} {'OutPkts':>8} "
                     f"{'InBytes':>8} {'OutBytes':>8}")
        lines.append("  -> RemoteAddress:Port")
    elif mode == "rate":
        lines.append(f"{'Prot LocalAddress:Port':<33} {'CPS':>8} {'InPPS':>8} {'OutPPS':>8} "
                     f"{'InBPS':>8} {'OutBPS':>8}")
        lines.append("  -> RemoteAddress:Port")
    else:
        lines.append("Prot LocalAddress:Port Scheduler Flags")
        lines.append("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
    for s in sorted(desired.services, key=_service_sort_key):
        sst = stats.service(s.key)
        name = _service_name(s, numeric, host_name, port_name)
        if mode == "stats":
            c = sst.counters
            lines.append(f"{name:<33}" + "".join(largenum(v, exact) for v in (
                c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes)))
        elif mode == "rate":
            r = sst.rates
            lines.append(f"{name:<33}" + "".join(largenum(v, exact) for v in (
                r.cps, r.inpps, r.outpps, r.inbps, r.outbps)))
        else:
            lines.append(f"{name} {s.scheduler}{_flags_text(s)}")
        proto = s.protocol
        for real in sorted(s.installed, key=_real_sort_key):
            rst: RealStats = sst.reals.get(real.key, RealStats())
            dname = _addrport(real.address, real.port, proto, numeric, host_name, port_name)
            if ":" not in real.address:
                dname = dname[:28]  # dname[28] = '\0' for IPv4
            if mode == "stats":
                c = rst.counters
                lines.append(f"  -> {dname:<28}" + "".join(largenum(v, exact) for v in (
                    c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes)))
            elif mode == "rate":
                r = rst.rates
                lines.append(f"  -> {dname:<28} {r.cps:8d} {r.inpps:8d} {r.outpps:8d}"
                             + largenum(r.inbps, exact) + largenum(r.outbps, exact))
            else:
                lines.append(f"  -> {dname:<28} {real.forward:<7} {real.weight:<6d} "
                             f"{rst.active:<10d} {rst.inactive:<10d}")
    return "\n".join(lines) + "\n"


def lvs_json(desired: DesiredState, stats: BalancerStats | None = None) -> dict:
    """The same table as plain data (`hadirector lvs --json`)."""
    stats = stats or BalancerStats()

    def counters(c: Counters) -> dict:
        return {"conns": c.conns, "inpkts": c.inpkts, "outpkts": c.outpkts,
                "inbytes": c.inbytes, "outbytes": c.outbytes}

    def rates(r: Rates) -> dict:
        return {"cps": r.cps, "inpps": r.inpps, "outpps": r.outpps, "inbps": r.inbps,
                "outbps": r.outbps}

    services = []
    for s in sorted(desired.services, key=_service_sort_key):
        sst = stats.service(s.key)
        reals = []
        for real in sorted(s.installed, key=_real_sort_key):
            rst = sst.reals.get(real.key, RealStats())
            reals.append({"address": real.address, "port": real.port, "forward": real.forward,
                          "weight": real.weight, "status": real.status,
                          "fallback": real.fallback, "active": rst.active,
                          "inactive": rst.inactive, "persistent": rst.persist,
                          "upper_threshold": real.upper_threshold,
                          "lower_threshold": real.lower_threshold,
                          "stats": counters(rst.counters), "rate": rates(rst.rates)})
        services.append({
            "key": s.key, "protocol": s.protocol.upper(), "address": s.address, "port": s.port,
            "fwmark": s.fwmark, "ipv6": s.ipv6, "scheduler": s.scheduler,
            "flags": sched_flag_names(s.scheduler, sched_flag_bits(s.sched_flags)),
            "persistent": s.persistent_s,
            "netmask": (None if s.netmask is None else
                        (str(s.netmask) if s.ipv6 else _dotted(s.netmask))),
            "ops": s.ops, "stats": counters(sst.counters), "rate": rates(sst.rates),
            "reals": reals,
            "down": [f"{r.address}:{r.port}" for r in s.reals if r.status == "down"],
        })
    return {"version": IPVS_VERSION, "size": IPVS_TABLE_SIZE, "services": services}


def lvs_reply_json(reply: Mapping, would: bool = False) -> dict:
    """`hadirector lvs --json` (and the HTTP API's `GET /api/v1/lvs`): the daemon's `lvs` reply as
    the table's plain data, each real with its health check, `active`, `held_by` and `would`."""
    desired, stats = decode_snapshot(reply)
    checks = reply.get("checks") or {}
    out = lvs_json(desired, stats)
    out["active"] = reply.get("active", True)
    out["held_by"] = reply.get("held_by", [])
    out["would"] = bool(would)
    for svc in out["services"]:
        for real in svc["reals"]:
            real["check"] = _check_for(checks, svc["key"], real["address"], real["port"])
    out["checks"] = list(checks.values())
    return out


def _check_for(checks: Mapping, service: str, address: str, port: int) -> dict | None:
    for c in checks.values():
        if c["virtual"] == service and c["address"] == address and c["port"] == port:
            return c
    return None


# --------------------------------------------------------------------------- connections

def connections_json(reply: Mapping) -> dict:
    """`hadirector lvs -c --json` (and `GET /api/v1/lvs?connections=1`'s `connections`): the flow
    table, on a backup the entries synced from the active (`synced`, `synced_from`)."""
    conns = reply.get("connections") or {"rows": [], "synced": False, "source": None}
    return {"active": reply.get("active", True), "held_by": reply.get("held_by", []),
            "synced": bool(conns.get("synced")), "synced_from": conns.get("source"),
            "connections": conns.get("rows") or []}


def _conn_addr(address: str | None, port: int | None, proto: str, numeric: bool,
               host_name: Resolver | None, port_name: PortResolver | None) -> str:
    return _addrport(address or "0.0.0.0", port or 0, proto.lower(), numeric, host_name, port_name)


def render_connections(rows: list[Mapping], *, numeric: bool = True, host_name: Resolver | None = None,
                       port_name: PortResolver | None = None) -> str:
    """ipvsadm -L -c: the connection table (ipvsadm.c list_conn/print_conn): `pro expire state
    source virtual destination`, expire as MM:SS, persistence templates with state NONE and
    client port 0, as IPVS shows them. Sorted by virtual, destination, source."""
    lines = ["IPVS connection entries",
             f"pro expire {'state':<11} {'source':<18} {'virtual':<18} destination"]
    key = (lambda r: (str(r.get("virtual")), r.get("vport") or 0, str(r.get("destination")),
                      r.get("dport") or 0, str(r.get("source")), r.get("sport") or 0))
    for r in sorted(rows, key=key):
        secs = -(-int(r.get("expire_ms", 0)) // 1000)
        expire = f"{secs // 60:02d}:{secs % 60:02d}"
        proto = str(r.get("protocol", "TCP"))
        src = _conn_addr(r.get("source"), r.get("sport"), proto, numeric, host_name, port_name)
        vip = _conn_addr(r.get("virtual"), r.get("vport"), proto, numeric, host_name, port_name)
        dst = _conn_addr(r.get("destination"), r.get("dport"), proto, numeric, host_name, port_name)
        lines.append(f"{proto:<3} {expire:<6} {r.get('state', ''):<11} {src:<18} {vip:<18} {dst}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- control socket

def lvs_snapshot(desired: DesiredState, stats: BalancerStats, dataplane: str | None = None) -> dict:
    """The reply body for the control command `lvs` (the daemon adds "ok")."""
    return {"desired": desired.to_dict(), "stats": stats.to_dict(), "dataplane": dataplane}


def decode_snapshot(reply: Mapping) -> tuple[DesiredState, BalancerStats]:
    try:
        return (DesiredState.from_dict(reply["desired"]),
                BalancerStats.from_dict(reply.get("stats") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the daemon's lvs reply is not understood: {exc!r}") from None


def system_resolvers() -> tuple[Resolver, PortResolver]:
    """Name lookups as ipvsadm does them without -n: reverse DNS and /etc/services."""
    hosts: dict[str, str | None] = {}
    ports: dict[tuple[int, str], str | None] = {}

    def host_name(addr: str) -> str | None:
        if addr not in hosts:
            try:
                hosts[addr] = socket.gethostbyaddr(addr)[0]
            except OSError:
                hosts[addr] = None
        return hosts[addr]

    def port_name(port: int, proto: str) -> str | None:
        if (port, proto) not in ports:
            try:
                ports[(port, proto)] = socket.getservbyport(port, proto)
            except OSError:
                ports[(port, proto)] = None
        return ports[(port, proto)]

    return host_name, port_name
