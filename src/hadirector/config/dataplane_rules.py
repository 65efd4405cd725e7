"""What each data plane cannot do, checked when the configuration is read: pure.

A virtual service the chosen data plane would refuse when the balancer starts (at failover time)
is refused here instead, with the key path of the value at fault, so `hadirector check` predicts
what `run` does. Each rule names the data-plane function that enforces it at apply time, where it
stays as a last line of defence (tests/unit/test_validation_first.py ties the two together).

Which rules apply follows `[balancer] dataplane`: `nft` the kernel data plane's, `proxy` the
userspace proxy's; `auto` picks nft when the daemon runs as root with libnftables, which is how a
director runs, so `auto` is held to the nft rules (say `dataplane = "proxy"` to be held to the
proxy's instead). Rules that depend on the machine (which device a VIP arrives on, whether a gate
real answers ARP, which addresses are the director's own) can only be checked by the data plane.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Balancer, Fallback, Real, VirtualService

Problems = list[tuple[str, str]]


def _local(address: str) -> bool:
    """A real the nft data plane delivers locally whatever its method (nft_render._method: a
    loopback address, as IPVS forces IP_VS_CONN_F_LOCALNODE for the director's addresses)."""
    return ipaddress.ip_address(address).is_loopback


def _takes_connections(vs: "VirtualService", r: "Real") -> bool:
    """Can this real ever be scheduled new connections? A weight above 0, or a weight a check may
    raise (external_weight)."""
    return r.weight > 0 or vs.external_weight


def nft_problems(where: str, vs: "VirtualService") -> Problems:
    """nft_render._render_service refuses these when it renders the service."""
    out: Problems = []
    entries: list[tuple[str, Real | Fallback]] = [(f"{where}.reals.{j}", r) for j, r in enumerate(vs.reals)]
    if vs.fallback is not None:
        entries.append((f"{where}.fallback", vs.fallback))
    for path, r in entries:
        if r.method == "ipip" and not _local(r.address):
            out.append((f"{path}.method", f"real {r.address}: ipip (tunnel) forwarding is not possible with "
                        "the nft data plane; use gate or masq (or dataplane = \"proxy\")"))
        elif r.method == "gate" and not _local(r.address):
            if vs.fwmark is not None:
                out.append((f"{path}.method", f"real {r.address}: direct routing (gate) of a fwmark service "
                            "is not possible with the nft data plane (it forwards at netdev ingress, "
                            "before the mark is set in prerouting); use masq"))
            elif r.port is not None and r.port != vs.port:
                out.append((f"{path}.port", f"gate real {r.address}:{r.port} has another port than the "
                            f"service ({vs.port}); direct routing cannot change the port"))
    # one place schedules a service: netdev ingress for gate, nat prerouting for masq/local
    gate = [j for j, r in enumerate(vs.reals)
            if r.method == "gate" and not _local(r.address) and _takes_connections(vs, r)]
    nat = [j for j, r in enumerate(vs.reals)
           if (r.method == "masq" or _local(r.address)) and _takes_connections(vs, r)]
    if gate and nat:
        g, n = vs.reals[gate[0]], vs.reals[nat[0]]
        out.append((f"{where}.reals.{max(gate[0], nat[0])}.method",
                    f"real {g.address} (gate) and real {n.address} ({'local' if _local(n.address) else 'masq'}) "
                    "both take new connections; the nft data plane schedules a service either at the "
                    "device (gate) or in NAT (masq, local), not both: use one method per service"))
    return out


def proxy_problems(where: str, vs: "VirtualService") -> Problems:
    """dataplane.proxy.ProxyDataPlane.apply cannot serve these (it skips them as unsupported)."""
    if vs.fwmark is not None:
        return [(f"{where}.fwmark", "the proxy data plane cannot serve a fwmark service (it listens on an "
                 "address and port); use dataplane = \"nft\"")]
    return []


RULES = {"nft": nft_problems, "proxy": proxy_problems, "auto": nft_problems}


def dataplane_problems(balancer: "Balancer") -> Problems:
    rule = RULES[balancer.dataplane]
    out: Problems = []
    for i, vs in enumerate(balancer.virtual):
        out += rule(f"balancer.virtual.{i}", vs)
    return out
