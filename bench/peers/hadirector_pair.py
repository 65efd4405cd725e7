"""hadirector as a bench/peers system: `hadirector run` on each director from heartbeat files
(ha.cf, authkeys, haresources), the heartbeat on eth1 only, auto_failback off.

Setting.defaults writes no timing lines, so hadirector takes its defaults, heartbeat's
(config/model.py Timing: keepalive 1 s, deadtime 30 s; initdead as heartbeat derives it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from hadirector.lab.hacluster import write_ha_dir

from .base import Pair, Setting
from .topology import NODES, VIP, PeersLab

TIMING = re.compile(r"^(keepalive|deadtime|warntime|initdead) ")


class HadirectorPair(Pair):
    system = "hadirector"

    def __init__(self, lab: PeersLab, workdir: str, setting: Setting, extra_hacf: str = ""):
        super().__init__(lab, workdir, setting)
        self.procs: dict = {}
        self.logs: dict[str, str] = {n: "" for n in NODES}  # output of earlier (crashed) runs
        s = setting
        for n in NODES:
            d = self.ha_dir(n)
            write_ha_dir(d, nodes=list(NODES), lan_addrs=[], vip=VIP, preferred="dir-a",
                         auto_failback="off", keepalive=s.keepalive_ms or 2000,
                         deadtime=s.deadtime_ms or 30000, warntime=s.warntime_ms,
                         initdead=s.initdead_ms, hb_addrs=[lab.pair.hb_addr[x] for x in NODES],
                         lan_heartbeat=False, extra_hacf=extra_hacf)
            if s.defaults:
                path = os.path.join(d, "ha.cf")
                with open(path) as f:
                    lines = [line for line in f if not TIMING.match(line)]
                with open(path, "w") as f:
                    f.writelines(lines)

    def ha_dir(self, node: str) -> str:
        return os.path.join(self.workdir, node, "ha.d")

    def state_dir(self, node: str) -> str:
        return os.path.join(self.workdir, node, "state")

    def start(self, node: str) -> None:
        argv = [sys.executable, "-m", "hadirector", "run", "--ha-dir", self.ha_dir(node), "--node", node,
                "--state-dir", self.state_dir(node)]
        self.procs[node] = self.lab.host(node).spawn(argv, name="hadirector")

    def _status(self, node: str) -> dict:
        try:
            r = subprocess.run([sys.executable, "-m", "hadirector", "status", "--json", "--state-dir",
                                self.state_dir(node)], capture_output=True, text=True, timeout=30)
            return json.loads(r.stdout)
        except (ValueError, subprocess.TimeoutExpired):  # starting, or a starved machine: ask again
            return {}

    def _hears(self, node: str, peer: str) -> bool:
        nodes = self._status(node).get("nodes", [])
        return any(n.get("name") == peer and n.get("status") == "active" for n in nodes)

    def wait_one_holder(self, timeout: float) -> str:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            h = self.lab.holders()
            if len(h) == 1 and self._hears("dir-a", "dir-b") and self._hears("dir-b", "dir-a"):
                return h[0]
            time.sleep(0.1)
        raise RuntimeError(f"hadirector: no settled single holder after {timeout:.0f}s "
                           f"(holders {self.lab.holders()})\n" + self.log_tails())

    def crash(self, node: str) -> None:
        self.procs[node].kill9()
        self.lab.links(node, False)

    def recover(self, node: str) -> None:
        self.logs[node] += self.procs[node].output()
        self.lab.clear_vip(node)
        self.lab.links(node, True)
        self.start(node)
        self.wait_one_holder(60 + 3 * (self.setting.initdead_ms or 60_000) / 1000)

    def switchover(self, node: str) -> None:
        subprocess.Popen([sys.executable, "-m", "hadirector", "standby", "--state-dir", self.state_dir(node),
                          "--wait", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait(30)

    def false_detections(self) -> int:
        return sum(self.log(n).count("-> dead") for n in NODES)

    def log(self, node: str) -> str:
        return self.logs[node] + (self.procs[node].output() if node in self.procs else "")

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop(10)
