#!/usr/bin/env python3
"""Kernel data plane benchmark (root): wrk in network namespaces against one real server directly,
through nftables NAT and through nftables direct routing, side by side in one run.

    sudo .venv/bin/python bench/dataplane_nft.py [--duration 5] [--rounds 3] [--connections 50]

The lab (hadirector.lab, one LAN 198.18.0.0/24 on a bridge): client 198.18.0.10 runs wrk,
director 198.18.0.2 runs the nft data plane, the real 198.18.0.11 runs nginx (1 worker,
`return 200`). Targets:
  ns-direct  wrk -> 198.18.0.11:80 (the real itself)
  nft-dr     wrk -> VIP 198.18.0.100:80, gate: netdev ingress on the director rewrites the MAC and
             forwards; the real holds the VIP on lo (`hadirector realserver`) and answers directly
  nft-nat    wrk -> VIP 198.18.0.101:80, masq: DNAT on the director and masquerade (one LAN, so
             replies must come back through the director)
Each target with keep-alive and with a new connection per request (`Connection: close`),
interleaved over the rounds (the machine is shared; the median is reported). Prints requests/s
and the ratios to ns-direct. Everything runs in namespaces the script creates and removes.

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
REAL = "198.18.0.11"


class KernelLab:
    """client, director, one real on one bridge; the nft data plane with a DR and a NAT service.
    Shared by the three targets; built at the first start(), removed at the last stop()."""

    def __init__(self, nginx_workers: int = 1, count_traffic: bool = True):
        self.nginx_workers = nginx_workers
        self.count_traffic = count_traffic
        self.users = 0
        self.lab: Lab | None = None
        self.dp: NftDataPlane | None = None

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
        self.real.connect(lan, f"{REAL}/24")
        self.director.add_address(f"{VIP_DR}/32", "eth0")
        self.director.add_address(f"{VIP_NAT}/32", "eth0")
        self.director.enable_forwarding()
        self.real.run([sys.executable, "-m", "hadirector", "realserver", "--vip", VIP_DR,
                       "--state-dir", os.path.join(lab.dir, "rs"), "up"])
        self.real.http_server(port=80, identity="real", kind="nginx")
        bal = Balancer.model_validate({"virtual": [
            {"address": VIP_DR, "port": 80, "scheduler": "wrr", "reals": [{"address": REAL, "method": "gate"}]},
            {"address": VIP_NAT, "port": 80, "scheduler": "wrr", "reals": [{"address": REAL, "method": "masq"}]},
        ]})
        self.dp = NftDataPlane(netns=self.director.netns, stats_interval=0, count_connections=False,
                               options=NftOptions(snat="masquerade", count_traffic=self.count_traffic))
        asyncio.run(self.dp.apply(build_desired(bal)))
        self.wrk_prefix = ["ip", "netns", "exec", self.client.netns]


class _KernelTarget:
    name = ""
    address = ""

    def __init__(self, shared: KernelLab):
        self.shared = shared
        self.wrk_prefix: list[str] = []

    def start(self) -> tuple[str, int]:
        k = self.shared.acquire()
        self.wrk_prefix = k.wrk_prefix
        return self.address, 80

    def stop(self) -> None:
        self.shared.release()


class NsDirect(_KernelTarget):
    name, address = "ns-direct", REAL


class NftDR(_KernelTarget):
    name, address = "nft-dr", VIP_DR


class NftNAT(_KernelTarget):
    name, address = "nft-nat", VIP_NAT


def kernel_targets(nginx_workers: int = 1, count_traffic: bool = True) -> list:
    """The kernel targets (empty unless root with nft, nginx and wrk)."""
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("nft", "nginx", "wrk", "ip")):
        return []
    shared = KernelLab(nginx_workers, count_traffic)
    return [NsDirect(shared), NftDR(shared), NftNAT(shared)]


MODES = {"keep-alive": [], "new-conn": ["-H", "Connection: close"]}


def run_wrk(prefix: list[str], host: str, port: int, mode: str, duration: int, connections: int,
            threads: int) -> float:
    cmd = [*prefix, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", *MODES[mode],
           f"http://{host}:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk gave no Requests/sec:\n{out.stdout}\n{out.stderr}")
    errors = re.search(r"Socket errors: (.*)", out.stdout)
    if errors:
        print(f"    ({mode}: wrk socket errors: {errors.group(1)})", file=sys.stderr)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    if non2xx:
        print(f"    ({mode}: {non2xx.group(1)} non-2xx answers)", file=sys.stderr)
    return float(m.group(1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds, median reported (default 3)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--nginx-workers", type=int, default=1)
    p.add_argument("--modes", default="keep-alive,new-conn")
    p.add_argument("--no-traffic-counters", action="store_true",
                   help="NAT without the per-real packet/byte counters (NftOptions.count_traffic)")
    args = p.parse_args(argv)
    targets = kernel_targets(args.nginx_workers, not args.no_traffic_counters)
    if not targets:
        print("bench: needs root with nft, nginx, wrk and ip", file=sys.stderr)
        return 2
    modes = args.modes.split(",")
    runs: dict[str, dict[str, list[float]]] = {}
    started = []
    try:
        where = {}
        for t in targets:
            where[t.name] = t.start()
            started.append(t)
            run_wrk(t.wrk_prefix, *where[t.name], "keep-alive", 1, args.connections, args.threads)
        for rnd in range(args.rounds):
            for mode in modes:
                for t in targets:
                    rps = run_wrk(t.wrk_prefix, *where[t.name], mode, args.duration, args.connections,
                                  args.threads)
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
    base = results.get("ns-direct")
    for name, r in results.items():
        if base and name != "ns-direct":
            print(f"{name + ' / ns-direct':<22}" + "".join(
                f"{r[m] / base[m]:>16.2f}" for m in modes if m in r and base.get(m)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
