"""A hadirector cluster in a lab: two directors started from heartbeat-style directories
(ha.cf, authkeys, haresources), each running `hadirector run` in its own namespace.

Used by the failover integration tests and bench/failover.py:

    with Lab() as lab:
        pair = director_pair(lab, hb_link=True)
        c = HaCluster(pair, workdir, keepalive=100, deadtime=500)
        c.start("dir-a"); c.start("dir-b")
        c.wait_holder("dir-a")
        c.power_off("dir-a")             # kill -9 and link down at the same instant
        c.wait_holder("dir-b")
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

from .presets import DirectorPair
from .topology import LabProcess


def write_ha_dir(path: str, *, nodes: list[str], lan_addrs: list[str], vip: str, preferred: str,
                 auto_failback: str = "on", keepalive: int = 100, deadtime: int = 500,
                 warntime: int | None = None, initdead: int | None = None,
                 hb_addrs: list[str] | None = None, key: str = "lab-secret",
                 extra_resources: str = "", ldirectord_cf: str | None = None,
                 lan_heartbeat: bool = True, udpport: int = 694, ping: tuple[str, ...] = (),
                 extra_hacf: str = "") -> None:
    """Write ha.cf, authkeys (mode 0600) and haresources, as a heartbeat user would have them:
    every node's address on each ucast line, so one file serves both nodes. `lan_heartbeat`
    False: heartbeats only on the hb link (eth1), none on the public LAN; `ping`: ping nodes."""
    os.makedirs(path, exist_ok=True)
    warntime = warntime if warntime is not None else max(keepalive, deadtime // 2)
    initdead = initdead if initdead is not None else 2 * deadtime
    lines = [f"keepalive {keepalive}ms", f"warntime {warntime}ms", f"deadtime {deadtime}ms",
             f"initdead {initdead}ms", f"udpport {udpport}"]
    lines += [f"ucast eth0 {a}" for a in lan_addrs] if lan_heartbeat else []
    lines += [f"ucast eth1 {a}" for a in (hb_addrs or [])]
    lines += [f"ping {a}" for a in ping]
    lines += [f"auto_failback {auto_failback}"] + [f"node {n}" for n in nodes]
    lines += [extra_hacf.rstrip("\n")] if extra_hacf else []  # e.g. a quorum_device line
    with open(os.path.join(path, "ha.cf"), "w") as f:
        f.write("\n".join(lines) + "\n")
    fd = os.open(os.path.join(path, "authkeys"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"auth 1\n1 sha1 {key}\n")
    os.chmod(os.path.join(path, "authkeys"), 0o600)
    with open(os.path.join(path, "haresources"), "w") as f:
        f.write(f"{preferred} {vip}/24/eth0 {extra_resources}".rstrip() + "\n")
    if ldirectord_cf is not None:
        with open(os.path.join(path, "ldirectord.cf"), "w") as f:
            f.write(ldirectord_cf)


def _holds(address: str) -> bool:
    """True when `address` is configured in the calling thread's namespace (bind succeeds)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((address, 0))
        return True
    except OSError as e:
        if e.errno == errno.EADDRNOTAVAIL:
            return False
        raise
    finally:
        s.close()


@dataclass
class Sample:
    t: float
    holders: tuple[str, ...]
    off: tuple[str, ...] = ()  # directors cut off (power off / partition) at that moment


class HaCluster:
    def __init__(self, pair: DirectorPair, workdir: str, *, keepalive: int = 100, deadtime: int = 500,
                 warntime: int | None = None, initdead: int | None = None, auto_failback: str = "on",
                 two_links: bool = True, extra_resources: str = "", ldirectord_cf: str | None = None,
                 lan_heartbeat: bool = True, ping: tuple[str, ...] = (),
                 overrides: dict[str, dict] | None = None, extra_hacf: str = ""):
        """`lan_heartbeat` False puts the heartbeat on the hb link only; `overrides` gives one
        node other write_ha_dir arguments (a misconfiguration: {"dir-b": {"key": "other"}})."""
        self.pair = pair
        self.workdir = workdir
        self.vip = pair.vip
        self.hosts = {h.name: h for h in pair.directors}
        self.procs: dict[str, LabProcess] = {}
        names = [h.name for h in pair.directors]
        self.preferred = names[0]
        hb = [pair.hb_addr[n] for n in names] if two_links and pair.hb is not None else None
        for n in names:
            write_ha_dir(self.ha_dir(n), **{
                "nodes": names, "lan_addrs": [pair.addr[x] for x in names], "vip": self.vip,
                "preferred": self.preferred, "auto_failback": auto_failback, "keepalive": keepalive,
                "deadtime": deadtime, "warntime": warntime, "initdead": initdead, "hb_addrs": hb,
                "extra_resources": extra_resources, "ldirectord_cf": ldirectord_cf,
                "lan_heartbeat": lan_heartbeat, "ping": ping, "extra_hacf": extra_hacf,
                **(overrides or {}).get(n, {})})
        self.off: set[str] = set()  # hosts whose power is off (links down, daemon killed)
        self.samples: list[Sample] = []
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def ha_dir(self, name: str) -> str:
        return os.path.join(self.workdir, name, "ha.d")

    def state_dir(self, name: str) -> str:
        return os.path.join(self.workdir, name, "state")

    # ------------------------------------------------------------------ daemons

    def start(self, name: str, *extra: str) -> LabProcess:
        argv = [sys.executable, "-m", "hadirector", "run", "--ha-dir", self.ha_dir(name), "--node", name,
                "--state-dir", self.state_dir(name), *extra]
        proc = self.hosts[name].spawn(argv, name="hadirector")
        self.procs[name] = proc
        return proc

    def stop(self, name: str, grace: float = 10.0) -> int | None:
        return self.procs[name].stop(grace)

    def power_off(self, name: str) -> None:
        """The holder loses power: its daemon killed with -9 and its links down at once."""
        self.procs[name].kill9()
        self.off.add(name)
        for dev in ("eth0", "eth1"):
            if dev in {l["ifname"] for l in self.hosts[name].links()}:
                self.hosts[name].run(["ip", "link", "set", dev, "down"])

    def power_on_links(self, name: str) -> None:
        self.off.discard(name)
        for dev in ("eth0", "eth1"):
            if dev in {l["ifname"] for l in self.hosts[name].links()}:
                self.hosts[name].run(["ip", "link", "set", dev, "up"])

    def log(self, name: str) -> str:
        return self.procs[name].output() if name in self.procs else ""

    # ------------------------------------------------------------------ observation

    def holders(self, include_off: bool = False) -> tuple[str, ...]:
        """Directors holding the VIP; a powered-off one (links down) only with `include_off`."""
        return tuple(n for n, h in self.hosts.items()
                     if (include_off or n not in self.off) and h.worker.call(_holds, self.vip))

    def wait_holder(self, name: str | None, timeout: float = 10.0, stable: float = 0.0) -> float:
        """Wait until exactly `name` holds the VIP (None: nobody); returns the seconds waited."""
        t0 = time.monotonic()
        want = () if name is None else (name,)
        since = None
        while time.monotonic() - t0 < timeout:
            if self.holders() == want:
                since = since or time.monotonic()
                if time.monotonic() - since >= stable:
                    return time.monotonic() - t0
            else:
                since = None
            time.sleep(0.01)
        raise AssertionError(f"VIP {self.vip}: wanted holder {name}, have {self.holders()} after "
                             f"{timeout}s\n--- logs ---\n" + "\n".join(
                                 f"[{n}]\n{self.log(n)[-3000:]}" for n in self.hosts))

    def start_sampling(self, period: float = 0.01, limit: float = 600.0) -> None:
        """Record who holds the VIP every `period` seconds (bounded by `limit`) in a thread."""
        self._sampling.set()

        def loop() -> None:
            t_end = time.monotonic() + limit
            while self._sampling.is_set() and time.monotonic() < t_end:
                self.samples.append(Sample(time.monotonic(), self.holders(include_off=True),
                                           tuple(sorted(self.off))))
                time.sleep(period)

        self._sampler = threading.Thread(target=loop, name="vip-sampler", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> list[Sample]:
        self._sampling.clear()
        if self._sampler:
            self._sampler.join(5)
        return self.samples

    def client_get(self, timeout: float = 1.0) -> str:
        """One HTTP request from the client to the VIP; returns the body (the answering director)."""
        return self.pair.client.http_get(self.vip, 80, timeout=timeout)
