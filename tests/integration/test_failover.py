"""Two directors and a client in network namespaces, each director running `hadirector run` from
a heartbeat directory (ha.cf, authkeys, haresources). Issue 3, item 7 (a)-(g).

Every director also runs an HTTP server answering its own name on every address, so a request from
the client to the VIP says which director answered it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from hadirector.lab.hacluster import HaCluster
from hadirector.lab.presets import director_pair
from hdtest import wait_until

KEEPALIVE, DEADTIME = 100, 500


def _cluster(lab, tmp_path, auto_failback="on", two_links=True) -> HaCluster:
    pair = director_pair(lab, hb_link=True)
    for h in pair.directors:
        h.http_server(port=80, identity=h.name)
    return HaCluster(pair, str(tmp_path), keepalive=KEEPALIVE, deadtime=DEADTIME,
                     auto_failback=auto_failback, two_links=two_links)


def _client_reaches(c: HaCluster, want: str, timeout: float = 5.0) -> None:
    """The client gets an answer from `want` through the VIP (retrying while ARP settles)."""
    # connection refused / timeouts while the VIP moves are "not yet"
    wait_until(lambda: c.client_get(timeout=0.5).strip() == want or None, timeout, 0.05,
               f"the client to reach {want} through the VIP", ignore=(Exception,))


def _no_double_holder(samples, allowed_off: bool = True) -> None:
    """(g) at no sampled moment do two reachable directors hold the VIP."""
    assert samples, "the sampler recorded nothing"
    bad = [s for s in samples if len([h for h in s.holders if not (allowed_off and h in s.off)]) > 1]
    assert not bad, f"{len(bad)} of {len(samples)} samples show two holders, first at {bad[0]}"


def _ctl(c: HaCluster, node: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hadirector", *args, "--state-dir", c.state_dir(node)],
                          capture_output=True, text=True, timeout=60)


def test_acquire_power_loss_failback_on(lab, tmp_path):
    c = _cluster(lab, tmp_path, auto_failback="on")
    c.start("dir-a")
    c.start("dir-b")
    c.start_sampling()
    try:
        # (a) the preferred node acquires the VIP and the client reaches it
        c.wait_holder("dir-a", timeout=10, stable=0.3)
        _client_reaches(c, "dir-a")
        mac_a = c.hosts["dir-a"].mac("eth0")
        assert c.pair.client.neigh_mac(c.vip) == mac_a
        # status shows both nodes and the owner
        st = _ctl(c, "dir-b", "status", "--json")
        assert st.returncode == 0, st.stderr
        assert '"owner": "dir-a"' in st.stdout and '"dir-a"' in st.stdout

        # (b) the holder loses power: the peer holds the VIP and the client reaches it again
        c.power_off("dir-a")
        waited = c.wait_holder("dir-b", timeout=10)
        assert waited < 5, f"failover took {waited:.2f}s"
        _client_reaches(c, "dir-b")
        # (f) gratuitous ARP moved the client's neighbour entry to the new holder's MAC
        assert c.pair.client.neigh_mac(c.vip) == c.hosts["dir-b"].mac("eth0")

        # (c) the preferred node returns; its stale VIP (left by the "crash") is removed at start,
        # before its links come back; with auto_failback on the VIP moves back to it
        c.start("dir-a")
        wait_until(lambda: not c.hosts["dir-a"].has_address(c.vip), 10, 0.05,
                   "the stale VIP to be removed at start-up")
        c.power_on_links("dir-a")
        c.wait_holder("dir-a", timeout=15, stable=0.3)
        _client_reaches(c, "dir-a")
        assert c.pair.client.neigh_mac(c.vip) == mac_a
    finally:
        samples = c.stop_sampling()
    _no_double_holder(samples)


def test_failback_off_standby_takeover(lab, tmp_path):
    c = _cluster(lab, tmp_path, auto_failback="off")
    c.start("dir-a")
    c.start("dir-b")
    c.start_sampling()
    try:
        c.wait_holder("dir-a", timeout=10, stable=0.3)
        # (d) standby on the holder moves the group to the peer ...
        r = _ctl(c, "dir-a", "standby", "all")
        assert r.returncode == 0, r.stdout + r.stderr
        c.wait_holder("dir-b", timeout=10, stable=0.3)
        _client_reaches(c, "dir-b")
        # ... and takeover brings it back
        r = _ctl(c, "dir-a", "takeover", "all")
        assert r.returncode == 0, r.stdout + r.stderr
        c.wait_holder("dir-a", timeout=10, stable=0.3)
        _client_reaches(c, "dir-a")

        # (c) with auto_failback off a returning preferred node does not take the VIP back
        c.power_off("dir-a")
        c.wait_holder("dir-b", timeout=10)
        c.start("dir-a")
        wait_until(lambda: not c.hosts["dir-a"].has_address(c.vip), 10, 0.05,
                   "the stale VIP to be removed at start-up")
        c.power_on_links("dir-a")
        time.sleep(3 * DEADTIME / 1000 + 1.0)  # long enough for a failback to have happened
        assert c.holders() == ("dir-b",)
        _client_reaches(c, "dir-b")
    finally:
        samples = c.stop_sampling()
    _no_double_holder(samples)


def test_one_link_cut_causes_no_failover(lab, tmp_path):
    c = _cluster(lab, tmp_path, two_links=True)
    c.start("dir-a")
    c.start("dir-b")
    c.wait_holder("dir-a", timeout=10, stable=0.3)
    c.start_sampling()
    try:
        # (e) cut the lan link between the directors' heartbeats... but keep the client's path:
        # take dir-b's hb interface down; heartbeats still flow on eth0
        c.hosts["dir-b"].run(["ip", "link", "set", "eth1", "down"])
        time.sleep(4 * DEADTIME / 1000)
        assert c.holders() == ("dir-a",)
        st = _ctl(c, "dir-b", "status")
        assert st.returncode == 0, st.stderr
        assert "ucast:eth1 dead" in st.stdout, st.stdout
        assert "ucast:eth0 up" in st.stdout or "ucast:eth0 active" in st.stdout, st.stdout
        c.hosts["dir-b"].run(["ip", "link", "set", "eth1", "up"])
        time.sleep(2 * DEADTIME / 1000)
        assert c.holders() == ("dir-a",)
    finally:
        samples = c.stop_sampling()
    assert all(s.holders == ("dir-a",) for s in samples), "the VIP moved although one link still worked"


def test_sigterm_releases(lab, tmp_path):
    c = _cluster(lab, tmp_path)
    c.start("dir-a")
    c.start("dir-b")
    c.wait_holder("dir-a", timeout=10, stable=0.3)
    c.start_sampling()
    try:
        rc = c.stop("dir-a")  # SIGTERM: releases its group, tells the peer, exits
        assert rc == 0, c.log("dir-a")[-2000:]
        assert not c.hosts["dir-a"].has_address(c.vip)
        c.wait_holder("dir-b", timeout=5)
        _client_reaches(c, "dir-b")
    finally:
        samples = c.stop_sampling()
    _no_double_holder(samples, allowed_off=False)
