"""What keeps open NAT connections across a failover: the `[balancer.conntrackd]` keys resolved into a
plan for conntrackd (pure; the driver is dataplane/conntrackd.py).

A NAT connection lives in the director's conntrack table (the DNAT to its real). conntrackd
(conntrack-tools) in FTFW mode sends every change of that table to the other directors, which
keep it in their external cache; the node that takes the VIP commits that cache into its kernel
before the VIP is announced (conntrack-tools doc/sync/primary-backup.sh, the `primary` branch,
which keepalived users run from notify_master). hadirector does no conntrack sync of its own.

Rules:
- `enabled` unset: on when a virtual service has masq reals (or a masq fallback) and the
  cluster has more than one node; `true` runs it anyway, `false` never.
- the sync link: `interface` or the first cluster link with an interface; its peers: `peers`, else
  that link's ucast peers when `interface` names it (or was not given). One remote peer: UDP
  unicast (conntrackd.conf(5) "UDP"); several, or none known: multicast on the interface
  (225.0.0.50, Group = `port`), as conntrackd's recommended setup (SYNC EXAMPLE 1).
- conntrackd filters from user space (conntrackd.conf(5) FILTER): the protocols of the NAT
  services, and it ignores the director's own addresses, loopback and the VIPs (locally
  delivered traffic cannot move to another host; conntrack-tools src/filter.c
  __ct_filter_test_ipv4 compares the original source and the reply source only, so a DNATed
  connection, whose reply source is the real, passes). Not `Filter From Kernelspace`: with the
  VIPs in its ignore list it synced nothing (measured; the kernel filter also looks at the
  original destination), and without them it cost the same CPU (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Balancer, Config

MULTICAST_GROUP = "225.0.0.50"  # conntrackd.conf(5) SYNC EXAMPLE 1


@dataclass(frozen=True)
class ConntrackdPlan:
    interface: str
    peers: tuple[str, ...]  # every director's address on the sync link; () = multicast
    port: int
    protocols: tuple[str, ...]  # conntrackd's names: "TCP", "UDP"
    vips: tuple[str, ...]  # the NAT services' addresses and the groups' VIPs (filtered out)
    explicit: bool  # `conntrackd = true` in the configuration (missing program: an error)


def nat_services(balancer: "Balancer | None") -> list:
    """The virtual services whose connections live in conntrack (a masq real or fallback)."""
    if balancer is None:
        return []
    return [vs for vs in balancer.virtual
            if any(r.method == "masq" for r in vs.reals)
            or (vs.fallback is not None and vs.fallback.method == "masq")]


def wants_conntrackd(cfg: "Config") -> bool:
    b = cfg.balancer
    if b is None or b.conntrackd.enabled is False:
        return False
    if b.conntrackd.enabled:
        return True
    # by default only where there is a link to sync over (a serial-only cluster has none)
    return bool(nat_services(b)) and len(cfg.cluster.nodes) > 1 and \
        (b.conntrackd.interface is not None or _link(cfg) is not None)


def _link(cfg: "Config"):
    want = cfg.balancer.conntrackd.interface if cfg.balancer is not None else None
    for link in cfg.cluster.links:
        if link.interface and (want is None or link.interface == want):
            return link
    return None


def conntrackd_plan(cfg: "Config") -> ConntrackdPlan | None:
    """The conntrackd this configuration runs on every director, or None."""
    if not wants_conntrackd(cfg):
        return None
    b = cfg.balancer
    link = _link(cfg)
    interface = b.conntrackd.interface or (link.interface if link is not None else None)
    if interface is None:
        return None  # sync_problems refuses it
    peers = b.conntrackd.peers or (link.peers if link is not None and link.kind == "ucast" else ())
    protocols: set[str] = set()
    vips: list[str] = []
    for vs in nat_services(b) or b.virtual:
        protocols |= {"TCP", "UDP"} if vs.protocol == "fwm" else {vs.protocol.upper()}
        if vs.address is not None:
            vips.append(vs.address)
    for g in cfg.groups:
        for r in g.resources:
            if r.kind == "vip":
                vips.append(r.address)
    return ConntrackdPlan(interface=interface, peers=tuple(peers), port=b.conntrackd.port,
                          protocols=tuple(sorted(protocols or {"TCP"})),
                          vips=tuple(dict.fromkeys(vips)), explicit=bool(b.conntrackd.enabled))


def sync_problems(cfg: "Config") -> list[tuple[str, str]]:
    """Values of [balancer.conntrackd] that cannot work, as (key path, message)."""
    b = cfg.balancer
    if b is None or not wants_conntrackd(cfg):
        return []
    out = []
    if b.conntrackd.interface is None and _link(cfg) is None:
        out.append(("balancer.conntrackd.interface", "conntrackd needs a sync link: no cluster link has an "
                    "interface (serial only); name one with interface"))
    fams = {":" in p for p in b.conntrackd.peers}
    if len(fams) > 1:
        out.append(("balancer.conntrackd.peers", "the sync peers mix IPv4 and IPv6 addresses; conntrackd "
                    "sends on one family"))
    return out


def nat_without_sync(cfg: "Config") -> bool:
    """NAT services on several directors and no conntrackd: open connections die at a failover."""
    return bool(nat_services(cfg.balancer)) and len(cfg.cluster.nodes) > 1 and not wants_conntrackd(cfg)
