"""A short human summary of a loaded configuration (what `hadirector check` prints): the cluster,
its groups and virtual services, then what `run` will start and watch on this node, and what is
configured but not run by this version."""

from __future__ import annotations

from .load import Loaded
from .model import fence_devices_for
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
    out.append(quorum_line(c))
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
    out += run_lines(loaded)
    if loaded.warnings:
        out.append(f"{len(loaded.warnings)} warning(s), printed on stderr")
    return out


def quorum_line(c) -> str:
    """How quorum will be decided (docs/cluster.md#quorum)."""
    q = c.quorum
    wfa = ", wait_for_all" if q.wait_for_all else ""
    if q.two_node(c.nodes):
        return f"quorum: two nodes, one vote is quorum (leases and probing decide){wfa}"
    expected = q.expected(c.nodes)
    dev = "" if q.device is None else (f", witness qnetd {q.device.host}:{q.device.port} "
                                       f"({q.device.algorithm}{'' if q.device.tls else ', no TLS'})")
    return (f"quorum: majority, {expected // 2 + 1} of {expected} votes{dev}{wfa}; "
            f"no_quorum_policy {q.no_quorum_policy}")


def commands(loaded: Loaded) -> list[tuple[str, str]]:
    """(what, command) for every command `run` may start: group notify, the balancer's callback and
    fallback commands, quorum and real server notifications, external check commands."""
    cfg = loaded.config
    out: list[tuple[str, str]] = [(f"notify of group {g.name}", g.notify) for g in cfg.groups if g.notify]
    b = cfg.balancer
    if b is not None:
        if b.callback:
            out.append(("callback on configuration change", b.callback))
        for vs in b.virtual:
            for key in ("fallbackcommand", "quorum_up", "quorum_down", "notify_up", "notify_down"):
                if getattr(vs, key):
                    out.append((f"{key} of {vs.name}", getattr(vs, key)))
            if vs.checktype in ("external", "external-perl"):
                out.append((f"check of {vs.name}", vs.checkcommand))
    return out


def fencing_lines(loaded: Loaded) -> list[str]:
    """Which peers this node fences with which devices, and from which it takes over unfenced."""
    c = loaded.config.cluster
    if c.fencing is None:
        return ["fencing: none configured (a silent peer is taken over without being powered off)"]
    me = loaded.node
    if me is None:
        return [f"fencing: {len(c.fencing.devices)} device(s), delay {c.fencing.delay} ms"]
    parts, bare = [], []
    for n in c.nodes:
        if n == me:
            continue
        devs = fence_devices_for(c.fencing, me, n, c.nodes)
        if devs:
            parts.append(f"{n} with {', '.join(d.label for d in devs)}")
        else:
            bare.append(n)
    out = [f"fencing: before taking over, {me} fences " + ("; ".join(parts) if parts else "nobody")
           + f" (delay {c.fencing.delay} ms when the peer ranks above {me})"]
    if bare:
        out.append(f"fencing: no device lets {me} fence {', '.join(bare)}: taken over without fencing")
    return out


def run_lines(loaded: Loaded) -> list[str]:
    """What `run` will start and watch on this node, and what it will not run."""
    cfg = loaded.config
    c = cfg.cluster
    watch = [f"{len(c.links)} heartbeat link(s)"]
    if c.ping or c.ping_groups:
        watch.append(f"{len(c.ping)} ping node(s) and {len(c.ping_groups)} ping group(s)")
    if cfg.groups:
        watch.append(f"{sum(len(g.resources) for g in cfg.groups)} resource(s) of {len(cfg.groups)} group(s)")
    if cfg.balancer is not None and cfg.balancer.virtual:
        reals = sum(len(vs.reals) for vs in cfg.balancer.virtual)
        watch.append(f"{reals} real server(s) of {len(cfg.balancer.virtual)} virtual service(s)")
    out = ["watches: " + ", ".join(watch)]
    cmds = commands(loaded)
    out.append("runs: " + ("; ".join(f"{cmd} ({what})" for what, cmd in cmds) if cmds else "no commands"))
    from .sync import conntrackd_plan, nat_without_sync
    plan = conntrackd_plan(cfg)
    if plan is not None:
        how = "UDP" if len(plan.peers) == 2 else "multicast"
        out.append(f"NAT connections: conntrackd (FTFW, {how} port {plan.port} on {plan.interface}), "
                   "committed at takeover before the VIPs")
    elif nat_without_sync(cfg):
        out.append("NAT connections: not synced (conntrackd off): they die at a failover")
    mail = [vs.alerts for vs in cfg.balancer.virtual if vs.alerts.to] if cfg.balancer else []
    if mail:
        to = sorted({a for al in mail for a in al.to})
        out.append(f"mails: {', '.join(to)} on real server changes")
    if c.respawn:
        out.append("respawns: " + "; ".join(f"{r.command} as {r.user}" for r in c.respawn)
                   + " (restarted when they exit, unless with 100)")
    if c.watchdog:
        out.append(f"watchdog: feeds {c.watchdog} every {c.timing.keepalive} ms while healthy "
                   f"(timeout {(c.timing.deadtime + 1009) // 1000} s: a hung node is reset)")
    rt = c.realtime
    if rt.enabled:
        out.append(f"realtime: SCHED_{rt.policy.upper()} priority {rt.priority}"
                   + (", memory locked" if rt.lock_memory else "") + " (if the kernel allows it; "
                   "processes it starts run at normal priority)")
    else:
        out.append("realtime: off (normal scheduling)")
    idle: list[str] = []
    # stonith_host parameters often hold a password: show the host and the device type only
    idle += [f"{u.directive} {' '.join(u.text.split()[:2]) if u.directive == 'stonith_host' else u.text} ({u.where})"
             for u in loaded.unused]
    out += fencing_lines(loaded)
    if idle:
        out.append("configured but not run by this version: " + "; ".join(idle))
    return out
