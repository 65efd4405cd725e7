"""The one topology every measure in bench/peers uses, for every system.

    client 198.18.0.10 ─┐
    dir-a  198.18.0.2  ─┤
    dir-b  198.18.0.3  ─┼─ lan (eth0)            VIP 198.18.0.100 (on the holder's eth0)
    real1  198.18.0.11 ─┤
    real2  198.18.0.12 ─┘
    dir-a  198.18.1.2  ─┬─ hb (eth1): the heartbeat link, and only the heartbeat travels on it
    dir-b  198.18.1.3  ─┘

Every director runs an HTTP server on port 80 that answers its own name: the failover measures
probe the VIP and so time the move of the address alone, the same for every system. The reals
run an HTTP server answering their name on port 80, for the check and data-plane measures.

Faults and load used by the measures live here too, so that every system gets the same ones:
`power_off` (every process of the system on that node killed with -9 and its links down in the
same instant), `hb_loss` (random loss on both ends of the heartbeat link) and `Burners`
(one busy process per CPU, at normal priority).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "src"))

from hadirector.lab.presets import DirectorPair, director_pair  # noqa: E402
from hadirector.lab.topology import Host, Lab  # noqa: E402

VIP = "198.18.0.100"
REALS = {"real1": "198.18.0.11", "real2": "198.18.0.12"}
NODES = ("dir-a", "dir-b")
LOSS_TABLE = "peers_hb_loss"


@dataclass
class PeersLab:
    lab: Lab
    pair: DirectorPair
    reals: dict[str, Host]

    @property
    def client(self) -> Host:
        return self.pair.client

    def host(self, name: str) -> Host:
        return {h.name: h for h in (*self.pair.directors, *self.reals.values())}[name]

    def other(self, node: str) -> str:
        return NODES[1 - NODES.index(node)]

    def holders(self) -> list[str]:
        """Directors whose kernel has the VIP configured (links up or not)."""
        return [n for n in NODES if self.host(n).has_address(VIP)]

    def links(self, node: str, up: bool) -> None:
        for dev in ("eth0", "eth1"):
            self.host(node).run(["ip", "link", "set", dev, "up" if up else "down"])

    def clear_vip(self, node: str) -> None:
        """What a power loss does to the addresses: the VIP is gone when the machine comes back."""
        h = self.host(node)
        if h.has_address(VIP):
            h.run(["ip", "addr", "del", f"{VIP}/24", "dev", "eth0"], check=False)

    def hb_loss(self, percent: float) -> None:
        """Random loss on the heartbeat link, both directions: each director drops `percent` % of
        what arrives on eth1 (nftables `numgen random` in an input chain of its own table; netem is
        not in this kernel). On input, not output: a packet dropped in the output hook fails the
        sender's sendto() with EPERM, which no lossy wire does (the run of 2026-12-02 06:36 used
        output and heartbeat 3 logged each as an ERROR). 0 removes it. Proves the rule is in place
        by reading it back; `hb_dropped()` gives the counters."""
        for n in NODES:
            h = self.host(n)
            h.run(["nft", "delete", "table", "inet", LOSS_TABLE], check=False)
            if percent > 0:
                per_mille = int(round(percent * 10))
                h.run(["nft", "-f", "-"], input=(
                    f"table inet {LOSS_TABLE} {{\n chain in {{\n  type filter hook input priority -400;\n"
                    f'  iifname "eth1" numgen random mod 1000 < {per_mille} counter drop\n }}\n}}\n'))
                shown = h.run(["nft", "list", "table", "inet", LOSS_TABLE]).stdout
                if f"< {per_mille}" not in shown or "drop" not in shown:
                    raise RuntimeError(f"heartbeat loss on {n} eth1 did not take effect: {shown!r}")

    def hb_dropped(self) -> int:
        """Packets the loss rules dropped so far, both directors."""
        total = 0
        for n in NODES:
            r = self.host(n).run(["nft", "list", "table", "inet", LOSS_TABLE], check=False)
            m = re.search(r"packets (\d+)", r.stdout)
            total += int(m.group(1)) if m else 0
        return total


def build(lab: Lab) -> PeersLab:
    pair = director_pair(lab, hb_link=True)
    for h in pair.directors:
        h.http_server(port=80, identity=h.name)
    reals = {}
    for name, addr in REALS.items():
        r = lab.host(name)
        r.connect(pair.lan, f"{addr}/24")
        r.http_server(port=80, identity=name)
        reals[name] = r
    return PeersLab(lab, pair, reals)


class Burners:
    """One busy-looping process per CPU at normal priority, so both cores are busy; ended by pid."""

    def __init__(self, count: int | None = None):
        self.count = count or os.cpu_count() or 2
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Burners":
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.count)]
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
