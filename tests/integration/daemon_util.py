"""Helpers for the daemon tests in network namespaces: a director pair running `hadirector run`
from heartbeat directories (lab.hacluster.HaCluster), control commands run as an operator would."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

from hadirector.lab.hacluster import HaCluster
from hadirector.lab.presets import director_pair

KEEPALIVE, DEADTIME = 100, 500


def pair_cluster(lab, tmp_path, **kw) -> HaCluster:
    """dir-a (preferred) and dir-b on a lan, with a second heartbeat link; each director answers
    HTTP on port 80 with its own name."""
    pair = director_pair(lab, hb_link=True)
    for h in pair.directors:
        h.http_server(port=80, identity=h.name)
    kw.setdefault("keepalive", KEEPALIVE)
    kw.setdefault("deadtime", DEADTIME)
    return HaCluster(pair, str(tmp_path), **kw)


def ctl(c: HaCluster, node: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`hadirector ARGS --state-dir <node's>` in the node's namespace, as an operator there."""
    return c.hosts[node].run([sys.executable, "-m", "hadirector", *args, "--state-dir", c.state_dir(node)],
                             check=False, timeout=timeout)


def run_argv(c: HaCluster, node: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hadirector", "run", "--ha-dir", c.ha_dir(node), "--node", node,
            "--state-dir", c.state_dir(node), *extra]


def no_double_holder(samples) -> None:
    """At no sampled moment (every 10 ms) do two directors hold the VIP."""
    assert samples, "the sampler recorded nothing"
    bad = [s for s in samples if len(s.holders) > 1]
    assert not bad, f"{len(bad)} of {len(samples)} samples show two holders, first at {bad[0]}"


def holders_seen(samples) -> set[tuple[str, ...]]:
    return {s.holders for s in samples}


def declared_dead(log: str, node: str) -> bool:
    return re.search(rf"node {re.escape(node)}: \w+ -> dead", log) is not None


def pid_file(c: HaCluster, node: str) -> str:
    return os.path.join(c.state_dir(node), "hadirector.pid")


# ----------------------------------------------------------------------------- one node alone

SOLO_CLUSTER = """
[cluster]
name = "solo"
nodes = ["solo"]
[cluster.timing]
keepalive = "100ms"
deadtime = "500ms"
initdead = "500ms"
[cluster.auth]
key = "test"
[[cluster.links]]
kind = "ucast"
interface = "lo"
peers = ["127.0.0.1"]
port = 694
"""


class Solo:
    """One node in a namespace of its own (a host of `lab`), running `hadirector run -c FILE`."""

    def __init__(self, lab, tmp_path, config: str, name: str = "solo"):
        self.host = lab.host(name)
        self.dir = tmp_path
        self.cfg = tmp_path / "solo.toml"
        self.state = str(tmp_path / "state")
        self.write(config)
        self.proc = None

    def write(self, config: str) -> None:
        self.cfg.write_text(config)

    def start(self, *extra: str, env: dict | None = None):
        self.proc = self.host.spawn([sys.executable, "-m", "hadirector", "run", "-c", str(self.cfg),
                                     "--node", "solo", "--state-dir", self.state, *extra],
                                    name="hadirector", env=env)
        return self.proc

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.host.run([sys.executable, "-m", "hadirector", *args, "--state-dir", self.state],
                             check=False, timeout=timeout)

    def log(self) -> str:
        return self.proc.output() if self.proc else ""

    def wait_ready(self, timeout: float = 15) -> None:
        from hdtest import wait_until
        wait_until(lambda: self.ctl("status").returncode == 0, timeout, 0.1,
                   lambda: "the daemon to answer\n" + self.log()[-3000:])


# ----------------------------------------------------------------------------- daemons on loopback

class Procs:
    """Processes of a loopback test (no namespaces), each logging to `<tmp>/<name>.log`."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name, argv):
        log = open(os.path.join(self.tmp, f"{name}.log"), "ab")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self.procs[name]

    def stop(self, name):
        p = self.procs.pop(name)
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def log(self, name):
        with open(os.path.join(self.tmp, f"{name}.log"), errors="replace") as f:
            return f.read()

    def close(self):
        for n in list(self.procs):
            self.stop(n)


def listening(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=0.3):
            return True
    except OSError:
        return False
