"""A short human summary of a loaded configuration (what `hadirector check` prints)."""

from __future__ import annotations

from .load import Loaded
from .model import (BalancerResource, OcfResource, ScriptResource, SystemdResource, VipResource,
                    VirtualService)


def _ms(v: int) -> str:
    return f"{v / 1000:g}s" if v % 1000 == 0 or v >= 10_000 else f"{v}ms"


def _resource(r) -> str:
    if isinstance(r, VipResource):
        s = f"vip {r.address}" + (f"/{r.prefixlen}" if r.prefixlen is not None else "")
        return s + (f" on {r.label or r.interface}" if (r.label or r.interface) else "")
    if isinstance(r, ScriptResource):
        return "script " + "::".join((r.name, *r.args))
    if isinstance(r, SystemdResource):
        return f"systemd {r.unit}"
    if isinstance(r, OcfResource):
        return f"ocf:{r.provider}:{r.agent}"
    if isinstance(r, BalancerResource):
        return "balancer" + (f" ({r.source})" if r.source else "")
    return r.kind


def _virtual(vs: VirtualService) -> str:
    flags = [vs.scheduler]
    if vs.persistent is not None:
        flags.append(f"persistent {_ms(vs.persistent)}")
    check = vs.checktype if vs.checktype != "combined" else f"{vs.num_connects} connects + negotiate"
    if vs.checktype in ("negotiate", "combined"):
        check += f" {vs.service}"
    methods = sorted({r.method for r in vs.reals})
    return (f"{vs.name} {' '.join(flags)}, {len(vs.reals)} real(s)"
            + (f" [{'/'.join(methods)}]" if methods else "")
            + f", check {check} every {_ms(vs.checkinterval)}"
            + (f", fallback {vs.fallback.address}" if vs.fallback else ""))


def summary_lines(loaded: Loaded) -> list[str]:
    cfg = loaded.config
    c = cfg.cluster
    t = c.timing
    out = [f"configuration OK: {loaded.source} ({'legacy heartbeat/ldirectord files' if loaded.legacy else 'native TOML'})"]
    me = f" (this node: {loaded.node})" if loaded.node else " (this node: not one of them)"
    out.append(f"cluster {c.name}: {len(c.nodes)} node(s): {', '.join(c.nodes)}{me}")
    links = []
    for link in c.links:
        if link.kind == "ucast":
            links.append(f"{link.name} -> {', '.join(link.peers)} port {link.port}")
        elif link.kind == "mcast":
            links.append(f"{link.name} group {link.group} port {link.port} ttl {link.ttl}")
        elif link.kind == "bcast":
            links.append(f"{link.name} port {link.port}")
        else:
            links.append(f"{link.name} {link.baud} baud")
    out.append(f"links: {'; '.join(links)}")
    out.append(f"timing: keepalive {_ms(t.keepalive)}, warntime {_ms(t.warntime)}, "
               f"deadtime {_ms(t.deadtime)}, initdead {_ms(t.initdead)}")
    out.append(f"auth: {c.auth.method} (key {c.auth.index}); auto_failback {c.auto_failback}")
    if c.ping or c.ping_groups:
        parts = []
        if c.ping:
            parts.append("ping " + ", ".join(c.ping))
        parts += [f"ping_group {g.name} ({', '.join(g.addresses)})" for g in c.ping_groups]
        out.append("connectivity: " + "; ".join(parts))
    if not cfg.groups:
        out.append("groups: none")
    for g in cfg.groups:
        out.append(f"group {g.name} (preferred {g.preferred_node}): "
                   + ", ".join(_resource(r) for r in g.resources))
    if cfg.balancer is not None:
        if not cfg.balancer.virtual:
            out.append("virtual services: none")
        for vs in cfg.balancer.virtual:
            out.append(f"virtual {_virtual(vs)}")
    if loaded.warnings:
        out.append(f"{len(loaded.warnings)} warning(s), printed on stderr")
    return out
