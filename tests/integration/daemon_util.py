"""Helpers for the daemon tests in network namespaces: a director pair running `hadirector run`
from heartbeat directories (lab.hacluster.HaCluster), control commands run as an operator would."""

from __future__ import annotations

import os
import re
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
