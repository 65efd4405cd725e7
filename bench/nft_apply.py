#!/usr/bin/env python3
"""How long one nft data plane apply takes (root): the time between a health check's verdict
reaching the data plane and the new ruleset being in the kernel.

    sudo .venv/bin/python bench/nft_apply.py [--applies 200] [--method gate|masq|both] [--flip up|weight]
                                             [--flows N]

A lab (hadirector.lab.balancer) with a director and 3 reals: one-arm for direct routing (gate),
two-arm for NAT (masq). One service on the VIP with the 3 reals; each apply flips real1 (down/up
by its health, or its weight 1/2), so every apply changes the ruleset. Prints per method the
median, 90th percentile and maximum of the whole apply and of its two halves: the facts
(NftDataPlane._gather_env: addresses, routes, neighbours) and the commit (listing what the
kernel holds, planning, the libnftables transaction). With --flows N, real2's flow set (direct
routing) holds N remembered connections first, as on a director under traffic, and the time of
one statistics refresh (NftDataPlane.refresh, which an apply waits behind) is printed too. Not
a test; the figures depend on the machine's load (say so when quoting them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from hadirector.balancer.state import build_desired  # noqa: E402
from hadirector.config.model import Balancer, RealKey  # noqa: E402
from hadirector.dataplane.nft import NftDataPlane  # noqa: E402
from hadirector.lab import VIP, Lab, balancer  # noqa: E402


def timed(dp: NftDataPlane, name: str, into: list[float]) -> None:
    """Wrap dp.<name> (a worker-thread method) to record its duration in ms."""
    fn = getattr(dp, name)

    def wrapper(*a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            into.append((time.perf_counter() - t) * 1000)
    setattr(dp, name, wrapper)


def desired_states(bl, method: str, flip: str) -> list:
    addrs = [bl.real_addr[f"real{i + 1}"] for i in range(3)]
    key = RealKey(f"TCP {VIP}:80", addrs[0], 80)
    out = []
    for state in (0, 1):
        weight1 = 2 if (flip == "weight" and state) else 1
        reals = [{"address": a, "method": method, "weight": weight1 if i == 0 else 1}
                 for i, a in enumerate(addrs)]
        b = Balancer.model_validate({"virtual": [{"address": VIP, "port": 80, "reals": reals}]})
        health = {key: False} if (flip == "up" and state) else None
        out.append(build_desired(b, health))
    return out


def fill_flows(bl, dp: NftDataPlane, n: int) -> None:
    """n entries in real2's flow set (client address . port), as n open connections leave."""
    r = dp._rendered
    name = next((k for k in (r.flow_sets if r else {}) if bl.real_addr["real2"] in k[2]), None)
    if name is None or n <= 0:
        return
    fam, table, sname = name
    for start in range(0, n, 10000):  # one nft batch per 10000
        elems = ", ".join(f"198.19.{i // 250 % 250}.{i % 250 + 1} . {1024 + i // 62500}"
                          for i in range(start, min(n, start + 10000)))
        bl.director.run(["nft", "-f", "-"], input=f"add element {fam} {table} {sname} {{ {elems} }}\n")


async def run(method: str, applies: int, flip: str, flows: int = 0) -> dict[str, list[float]]:
    with Lab() as lab:
        bl = balancer(lab, layout="one-arm" if method == "gate" else "two-arm", reals=3, http=None)
        dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)  # the daemon counts connections too
        facts: list[float] = []
        commit: list[float] = []
        total: list[float] = []
        try:
            states = desired_states(bl, method, flip)
            await dp.apply(states[0])  # the first apply resolves the reals' MACs and creates tables
            fill_flows(bl, dp, flows)
            refresh: list[float] = []
            if flows:
                for _ in range(5):
                    t = time.perf_counter()
                    await dp.refresh()
                    refresh.append((time.perf_counter() - t) * 1000)
            timed(dp, "_gather_env", facts)
            timed(dp, "_commit", commit)
            before = dp.applies
            for i in range(applies):
                t = time.perf_counter()
                await dp.apply(states[(i + 1) % 2])
                total.append((time.perf_counter() - t) * 1000)
            if dp.applies - before != applies:
                raise SystemExit(f"{method}: {dp.applies - before} transactions for {applies} applies")
        finally:
            await dp.close()
        out = {"apply": total, "facts": facts, "commit": commit}
        if refresh:
            out["refresh"] = refresh
        return out


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
    return f"{statistics.median(xs):7.2f} {p90:7.2f} {xs[-1]:7.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--applies", type=int, default=200, help="applies per method (default 200)")
    p.add_argument("--method", choices=["gate", "masq", "both"], default="both")
    p.add_argument("--flip", choices=["up", "weight"], default="up",
                   help="what changes between applies: real1 down/up (default) or its weight")
    p.add_argument("--flows", type=int, default=0,
                   help="remembered connections in real2's flow set (direct routing only; default 0)")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("nft_apply.py: needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    if a.applies < 1:
        print("nft_apply.py: --applies must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= a.flows <= 250 * 250 * 16:
        print("nft_apply.py: --flows must be between 0 and 1000000", file=sys.stderr)
        return 2
    methods = ["gate", "masq"] if a.method == "both" else [a.method]
    flows = f", {a.flows} flows in real2's set (gate)" if a.flows else ""
    print(f"{a.applies} applies per method, flipping real1 {'down/up' if a.flip == 'up' else 'weight 1/2'}"
          f"{flows}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'':14}{'median':>8}{'p90':>8}{'max':>8}   (ms)")
    for m in methods:
        res = asyncio.run(run(m, a.applies, a.flip, a.flows if m == "gate" else 0))
        for part in ("apply", "facts", "commit", "refresh"):
            if part in res:
                print(f"{m + ' ' + part:<14}{summary(res[part])}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
