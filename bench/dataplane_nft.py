#!/usr/bin/env python3
"""Kernel data plane benchmark (root): wrk in network namespaces against one real server directly,
through nftables NAT and through nftables direct routing, side by side in one run.

    sudo .venv/bin/python bench/dataplane_nft.py [--duration 5] [--rounds 3] [--connections 50]

Two labs (hadirector.lab), one real running nginx (1 worker, `return 200`), wrk on the client:
  one-arm (client 198.18.0.10, director 198.18.0.2, real 198.18.0.11 on one LAN):
    ns-direct     wrk -> the real itself, across the LAN
    nft-dr        wrk -> VIP 198.18.0.100, gate: netdev ingress on the director rewrites the MAC
                  and forwards; the real holds the VIP on lo and answers the client directly
    ref-dr-1rule  wrk -> VIP 198.18.0.102 through ONE hand-written ingress rule (MAC rewrite,
                  fwd): the floor of any DR forwarding in this lab, to tell our rules' cost from
                  the cost of the extra hop through the director
    nft-nat-masq  wrk -> VIP 198.18.0.101, masq with masquerade (one LAN: replies must be made
                  to come back through the director)
  two-arm (client -- director -- real 198.18.1.11, the real routes the client net via the director):
    ns-routed     wrk -> the real itself, routed by the director (no NAT): the baseline for NAT
                  (from a second client address, 198.18.0.20, so its TIME_WAIT tuples never
                  collide with the NAT runs' at the real and in conntrack)
    nft-nat       wrk -> VIP 198.18.0.101, classic LVS-NAT (DNAT, replies un-NATed by conntrack)
Each target with keep-alive and with a new connection per request (`Connection: close`),
interleaved over the rounds (the machine is shared). Prints the median requests/s and the ratio
of each target to its baseline, as the median of per-round ratios (runs back to back).
Everything runs in namespaces the script creates and removes.

The targets also follow bench/dataplane.py's target interface (name, start() -> (host, port),
stop(), plus `wrk_prefix`, the command prefix that runs wrk in the client namespace):
`kernel_targets()` returns them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from hadirector.balancer.state import build_desired  # noqa: E402
from hadirector.config.model import Balancer  # noqa: E402
from hadirector.dataplane.nft import NftDataPlane  # noqa: E402
from hadirector.dataplane.nft_render import NftOptions  # noqa: E402
from hadirector.lab import Lab  # noqa: E402

VIP_DR = "198.18.0.100"
VIP_NAT = "198.18.0.101"
VIP_REF = "198.18.0.102"


class KernelLab:
    """A lab with one real, shared by the targets of its layout; built at the first start(),
    removed at the last stop().

    one-arm: client 198.18.0.10, director 198.18.0.2, real 198.18.0.11 on one LAN. DR service on
        VIP_DR (the real holds it on lo), NAT service on VIP_NAT with masquerade (on one LAN the
        replies must be made to come back through the director).
    two-arm: client 198.18.0.10 -- 198.18.0.2 director 198.18.1.1 -- real 198.18.1.11; the real
        routes the client's network through the director (classic LVS-NAT, no SNAT): NAT
        service on VIP_NAT. The client reaches the real directly only through the director
        routing it, which is the fair baseline for NAT.
    """

    def __init__(self, layout: str, nginx_workers: int = 1, count_traffic: bool = True):
        self.layout = layout
        self.nginx_workers = nginx_workers
        self.count_traffic = count_traffic
        self.users = 0
        self.lab: Lab | None = None
        self.dp: NftDataPlane | None = None
        self.real_addr = "198.18.0.11" if layout == "one-arm" else "198.18.1.11"

    def acquire(self) -> "KernelLab":
        self.users += 1
        if self.lab is None:
            self._build()
        return self

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self.lab is not None:
            try:
                if self.dp is not None:
                    asyncio.run(self.dp.close())
            finally:
                self.lab.close()
                self.lab = self.dp = None

    def _build(self) -> None:
        lab = self.lab = Lab()
        lan = lab.switch("lan")
        self.client, self.director, self.real = lab.host("client"), lab.host("director"), lab.host("real")
        self.client.connect(lan, "198.18.0.10/24")
        self.director.connect(lan, "198.18.0.2/24")
        self.director.enable_forwarding()
        real = self.real_addr
        if self.layout == "one-arm":
            self.real.connect(lan, f"{real}/24")
            self.director.add_address(f"{VIP_DR}/32", "eth0")
            self.real.run([sys.executable, "-m", "hadirector", "realserver", "--vip", VIP_DR,
                           "--state-dir", os.path.join(lab.dir, "rs"), "up"])
            # the reference: the least any DR forwarding can do, one hand-written ingress rule
            self.director.add_address(f"{VIP_REF}/32", "eth0")
            self.real.run(["ip", "addr", "add", f"{VIP_REF}/32", "dev", "lo"])
            self.client.run(["ping", "-c", "1", "-W", "2", real])
            self.director.run(["ping", "-c", "1", "-W", "2", real])
            ref = (f'table netdev benchref {{ chain ingress {{ type filter hook ingress device "eth0" '
                   f'priority -200; policy accept; ip daddr {VIP_REF} tcp dport 80 ether daddr set '
                   f'{self.director.neigh_mac(real)} ether saddr set {self.director.mac("eth0")} '
                   f'fwd to "eth0"; }}; }}\n')
            self.director.run(["nft", "-f", "-"], input=ref)
            virtual = [
                {"address": VIP_DR, "port": 80, "reals": [{"address": real, "method": "gate"}]},
                {"address": VIP_NAT, "port": 80, "reals": [{"address": real, "method": "masq"}]}]
            options = NftOptions(snat="masquerade", count_traffic=self.count_traffic)
        else:
            back = lab.switch("back")
            self.director.connect(back, "198.18.1.1/24")
            self.real.connect(back, f"{real}/24")
            self.real.route("198.18.0.0/24", via="198.18.1.1")
            # the baseline goes out from another client address: the real sees the same
            # (client, port) tuples through NAT, and a tuple still in TIME_WAIT from the baseline
            # run would clash with a new NAT connection in the director's conntrack
            self.client.add_address("198.18.0.20/24", "eth0")
            self.client.run(["ip", "route", "add", f"{real}/32", "via", "198.18.0.2", "src", "198.18.0.20"])
            virtual = [{"address": VIP_NAT, "port": 80, "reals": [{"address": real, "method": "masq"}]}]
            options = NftOptions(count_traffic=self.count_traffic)
        self.director.add_address(f"{VIP_NAT}/32", "eth0")
        self.real.http_server(port=80, identity="real", kind="nginx")
        self.dp = NftDataPlane(netns=self.director.netns, stats_interval=0, count_connections=False,
                               options=options)
        asyncio.run(self.dp.apply(build_desired(Balancer.model_validate({"virtual": virtual}))))
        self.wrk_prefix = ["ip", "netns", "exec", self.client.netns]


class KernelTarget:
    """One way to reach the real; `base` names the target its ratio is taken against."""

    def __init__(self, name: str, shared: KernelLab, address: str | None, base: str | None):
        self.name = name
        self.shared = shared
        self.address = address
        self.base = base
        self.wrk_prefix: list[str] = []

    def start(self) -> tuple[str, int]:
        k = self.shared.acquire()
        self.wrk_prefix = k.wrk_prefix
        return (self.address or k.real_addr), 80

    def stop(self) -> None:
        self.shared.release()


def kernel_targets(nginx_workers: int = 1, count_traffic: bool = True) -> list:
    """The kernel targets (empty unless root with nft, nginx, wrk and ip)."""
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("nft", "nginx", "wrk", "ip")):
        return []
    one = KernelLab("one-arm", nginx_workers, count_traffic)
    two = KernelLab("two-arm", nginx_workers, count_traffic)
    return [KernelTarget("ns-direct", one, None, None),
            KernelTarget("nft-dr", one, VIP_DR, "ns-direct"),
            KernelTarget("ref-dr-1rule", one, VIP_REF, "ns-direct"),
            KernelTarget("nft-nat-masq", one, VIP_NAT, "ns-direct"),
            KernelTarget("ns-routed", two, None, None),
            KernelTarget("nft-nat", two, VIP_NAT, "ns-routed")]


def print_ratios(targets: list, runs: dict, results: dict, modes: list[str]) -> None:
    """Each kernel target against its baseline: the median of per-round ratios (the two runs
    were back to back, which is steadier than the ratio of medians on a shared machine)."""
    print("ratio (median of per-round ratios; ratio of medians in brackets)")
    names = {t.name for t in targets}
    pairs = [(t.name, t.base) for t in targets if getattr(t, "base", None)]
    pairs += [p for p in [("nft-dr", "ref-dr-1rule")] if p[0] in names and p[1] in names]
    for name, base in pairs:
        if name not in runs or base not in runs:
            continue
        cells = []
        for m in modes:
            per = [a / b for a, b in zip(runs[name].get(m, []), runs[base].get(m, [])) if b]
            if per:
                cells.append(f"{statistics.median(per):.2f} ({results[name][m] / results[base][m]:.2f})")
        print(f"{name + ' / ' + base:<26}" + "".join(f"{c:>16}" for c in cells))


from _wrk import MODES, run_wrk  # noqa: E402,F401  (bench/_wrk.py)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds, median reported (default 3)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--nginx-workers", type=int, default=1)
    p.add_argument("--modes", default="keep-alive,new-conn")
    p.add_argument("--only", help="comma-separated target names (bases are added)")
    p.add_argument("--no-traffic-counters", action="store_true",
                   help="NAT without the per-real packet/byte counters (NftOptions.count_traffic)")
    args = p.parse_args(argv)
    targets = kernel_targets(args.nginx_workers, not args.no_traffic_counters)
    if not targets:
        print("bench: needs root with nft, nginx, wrk and ip", file=sys.stderr)
        return 2
    if args.only:
        keep = set(args.only.split(","))
        keep |= {t.base for t in targets if t.name in keep and t.base}
        targets = [t for t in targets if t.name in keep]
    modes = args.modes.split(",")
    runs: dict[str, dict[str, list[float]]] = {}
    started = []
    try:
        where = {}
        for t in targets:
            where[t.name] = t.start()
            started.append(t)
            run_wrk(*where[t.name], "keep-alive", 1, args.connections, args.threads, prefix=t.wrk_prefix)
        for rnd in range(args.rounds):
            for mode in modes:
                for t in targets:
                    rps = run_wrk(*where[t.name], mode, args.duration, args.connections,
                                  args.threads, prefix=t.wrk_prefix)
                    runs.setdefault(t.name, {}).setdefault(mode, []).append(rps)
                    print(f"  round {rnd + 1}  {t.name:<10} {mode:<11} {rps:>12,.0f} req/s", file=sys.stderr)
    finally:
        for t in reversed(started):
            t.stop()
    results = {name: {m: statistics.median(v) for m, v in r.items()} for name, r in runs.items()}
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s in network namespaces, "
          f"{args.rounds} rounds (median), nginx {args.nginx_workers} worker(s), {os.cpu_count()} CPUs, "
          f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"{'target':<22}" + "".join(f"{m:>16}" for m in modes))
    for name, r in results.items():
        print(f"{name:<22}" + "".join(f"{r.get(m, 0):>16,.0f}" for m in modes))
    print()
    print_ratios(targets, runs, results, modes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
