"""keepalived 2.2.7 (Debian) as a bench/peers system: one VRRPv3 instance per director, the
adverts unicast on the heartbeat link eth1, the VIP on eth0 (`virtual_ipaddress ... dev eth0`),
equal priorities and `nopreempt` (like auto_failback off). Setting.defaults leaves advert_int out
(keepalived's default is 1 s; master down interval 3 x advert + skew, vrrp_data.c)."""

from __future__ import annotations

import os
import signal
import time

from .base import Pair, Setting
from .topology import NODES, VIP, PeersLab

CONF = """global_defs {{
    router_id {name}
    vrrp_version 3
    enable_script_security
    script_user root
    vrrp_garp_master_delay 0
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth1
    virtual_router_id 51
    priority {prio}
{advert}    nopreempt
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
}}
"""


class KeepalivedPair(Pair):
    system = "keepalived"

    def __init__(self, lab: PeersLab, workdir: str, setting: Setting):
        super().__init__(lab, workdir, setting)
        self.procs: dict = {}
        self.logs: dict[str, str] = {n: "" for n in NODES}
        self.prio = {n: 100 for n in NODES}

    def _dir(self, node: str) -> str:
        return os.path.join(self.workdir, node)

    def _write(self, node: str) -> str:
        d = self._dir(node)
        os.makedirs(d, exist_ok=True)
        advert = "" if self.setting.defaults else f"    advert_int {self.setting.advert_ms / 1000:g}\n"
        conf = os.path.join(d, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(name=node, prio=self.prio[node], advert=advert,
                                me=self.lab.pair.hb_addr[node],
                                peer=self.lab.pair.hb_addr[self.lab.other(node)], vip=VIP))
        return conf

    def start(self, node: str) -> None:
        conf = self._write(node)
        d = self._dir(node)
        # fresh pid files per start: the children of a killed run may linger as zombies (this
        # container's init does not reap them) and keepalived would think it still runs
        for f in ("k.pid", "v.pid", "c.pid"):
            p = os.path.join(d, f)
            if os.path.exists(p):
                os.rename(p, f"{p}.{time.monotonic_ns()}")
        self.procs[node] = self.lab.host(node).spawn(
            ["keepalived", "-n", "-l", "-D", "-f", conf, "-p", os.path.join(d, "k.pid"),
             "-r", os.path.join(d, "v.pid"), "-c", os.path.join(d, "c.pid")], name="keepalived")

    def _children(self, node: str, sig: int) -> None:
        """keepalived's VRRP and checker children are not in the parent's process group and
        outlive a SIGKILL of it: a power loss ends them too. Their pids are in our pid files."""
        for f in ("v.pid", "c.pid"):
            try:
                with open(os.path.join(self._dir(node), f)) as fh:
                    os.kill(int(fh.read().strip()), sig)
            except (OSError, ValueError):
                pass

    def _wait_backup(self, node: str, timeout: float = 30.0) -> None:
        """Until `node`'s keepalived says it entered BACKUP state (raises after `timeout`)."""
        t_end = time.monotonic() + timeout
        while not self._backup_seen(node):
            if time.monotonic() > t_end:
                raise RuntimeError("keepalived did not come back as backup\n" + self.log_tails())
            time.sleep(0.05)

    def _backup_seen(self, node: str) -> bool:
        return "Entering BACKUP STATE" in self.procs[node].output()

    def wait_one_holder(self, timeout: float) -> str:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            h = self.lab.holders()
            if len(h) == 1 and self._backup_seen(self.lab.other(h[0])):
                time.sleep(0.3)
                if self.lab.holders() == h:
                    return h[0]
            time.sleep(0.05)
        raise RuntimeError(f"keepalived: no single master after {timeout:.0f}s\n" + self.log_tails())

    def crash(self, node: str) -> None:
        self.procs[node].kill9()
        self._children(node, signal.SIGKILL)
        self.lab.links(node, False)

    def recover(self, node: str) -> None:
        self.logs[node] += self.procs[node].output()
        self.lab.clear_vip(node)
        self.lab.links(node, True)
        self.prio[node] = 100
        self.start(node)
        self._wait_backup(node)
        time.sleep(3 * (self.setting.advert_ms or 1000) / 1000)

    def switchover(self, node: str) -> None:
        """keepalived has no hand-over command: the documented ways are a priority change
        (reload with a lower priority; with nopreempt the peer does not take it from that alone)
        or stopping the master (SIGTERM: it sends a priority-0 advert, the backup takes over at
        once). We stop it, the way operators do, and start it again as backup afterwards."""
        self.procs[node].signal(signal.SIGTERM)

    def after_switchover(self, node: str) -> None:
        self.procs[node].stop(10)
        self._children(node, signal.SIGKILL)
        self.logs[node] += self.procs[node].output()
        self.start(node)
        self._wait_backup(node)

    def false_detections(self) -> int:
        # a backup that becomes master while its peer runs: "Entering MASTER STATE" beyond the
        # transitions the harness caused (it subtracts those)
        return sum(self.log(n).count("Entering MASTER STATE") for n in NODES)

    def log(self, node: str) -> str:
        return self.logs[node] + (self.procs[node].output() if node in self.procs else "")

    def stop(self) -> None:
        for n, p in self.procs.items():
            p.stop(10)
            self._children(n, signal.SIGKILL)
