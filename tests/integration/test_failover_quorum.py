"""Three directors in network namespaces, started from heartbeat directories with three `node`
lines (so majority quorum with no_quorum_policy stop, the default: docs/cluster.md#quorum). Issue
11, item 7: the holder is isolated from the other two (nftables in its namespace drops every
heartbeat datagram, in and out, on both links; ARP and the client's path stay up). It loses quorum
and stops its group; the majority takes the VIP once the wire is clear. Judged from the client's
side: "who has VIP" by ARP every 10 ms (lab.arpwatch), for how long two MACs answered (must be 0)
and how long after the cut the new holder answered. Then the cut heals and the VIP goes home.

Timing: keepalive 100 ms, warntime 250 ms, deadtime 500 ms, initdead 1 s (ha.cf).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hadirector.lab.hacluster import HaCluster
from hadirector.lab.presets import director_trio
from hdtest import need_root, wait_until

KEEPALIVE, WARNTIME, DEADTIME = 100, 250, 500
PERIOD = 0.01
TABLE = "hdquorumtest"
ISOLATE = f"""table inet {TABLE} {{
  chain in {{ type filter hook input priority -300; policy accept; udp dport 694 counter drop; }}
  chain out {{ type filter hook output priority -300; policy accept; udp dport 694 counter drop; }}
}}
"""


def _status(c: HaCluster, node: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hadirector", "status", *args, "--state-dir",
                           c.state_dir(node)], capture_output=True, text=True, timeout=60)


def _quorum(c: HaCluster, node: str) -> dict:
    r = _status(c, node, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["quorum"]


def _dropped(host) -> int:
    r = host.run(["nft", "-j", "list", "table", "inet", TABLE])
    n = 0
    for o in json.loads(r.stdout)["nftables"]:
        for e in (o.get("rule") or {}).get("expr", []):
            if "counter" in e:
                n += e["counter"]["packets"]
    return n


def _runs(windows):
    """Collapse [(t, (names...)), ...] into [(names, t_first, t_last)] runs."""
    out = []
    for t, w in windows:
        if out and out[-1][0] == w:
            out[-1][2] = t
        else:
            out.append([w, t, t])
    return out


@pytest.mark.parametrize("how", ["nft_drop", "links_down"])
def test_isolated_holder_of_three_stops_and_the_majority_takes_over(lab, tmp_path, how):
    """nft_drop: dir-a's heartbeats are dropped in its namespace, the client still sees it (so
    it must stop answering itself); links_down: both of dir-a's links go down, daemon running
    (the client cannot see it; `wait_holder` proves that it removed the VIP all the same)."""
    need_root("ip", "nft")
    trio = director_trio(lab, hb_link=True)
    c = HaCluster(trio, str(tmp_path), keepalive=KEEPALIVE, deadtime=DEADTIME, warntime=WARNTIME,
                  initdead=2 * DEADTIME, auto_failback="on")
    names = {h.mac("eth0"): h.name for h in trio.directors}
    a = c.hosts["dir-a"]
    arp_out = os.path.join(lab.dir, "arp.json")
    # the sampler first (a python process takes a while to start), then the directors
    arp = trio.client.python("hadirector.lab.arpwatch", "--iface", "eth0", "--address", trio.vip,
                             "--seconds", "60", "--period", str(PERIOD), "--out", arp_out)
    try:
        for n in ("dir-a", "dir-b", "dir-c"):
            c.start(n)
        c.wait_holder("dir-a", timeout=15, stable=0.5)
        wait_until(lambda: _quorum(c, "dir-a")["votes"] == 3 or None, 10, 0.1, "dir-a to count 3 votes")
        time.sleep(0.3)
        # --- the cut: dir-a hears nothing from and reaches nothing of dir-b and dir-c
        if how == "nft_drop":
            a.run(["nft", "-f", "-"], input=ISOLATE)
        else:
            for dev in ("eth0", "eth1"):
                a.run(["ip", "link", "set", dev, "down"])
        t_cut = time.monotonic()
        c.wait_holder("dir-b", timeout=10)  # exactly dir-b: dir-a removed its VIP too
        time.sleep(1.0)
        if how == "nft_drop":
            assert _dropped(a) > 20, "the isolation rule dropped (almost) nothing: the fault did not take"
        else:
            assert all(l["operstate"] == "DOWN" for l in a.links() if l["ifname"] in ("eth0", "eth1"))
        q_a, q_b = _quorum(c, "dir-a"), _quorum(c, "dir-b")
        assert (q_a["quorate"], q_a["votes"], q_a["expected"], q_a["needed"], q_a["policy"]) == \
            (False, 1, 3, 2, "stop"), q_a
        assert (q_b["quorate"], q_b["votes"], q_b["members"]) == (True, 2, ["dir-b", "dir-c"]), q_b
        text = _status(c, "dir-a").stdout
        assert "quorum: NO QUORUM (1 of 3 votes, 2 needed" in text and "groups stopped here" in text, text
        assert c.holders() == ("dir-b",)
        # --- heal: dir-a rejoins, is quorate again and (auto_failback on) takes its VIP back
        if how == "nft_drop":
            a.run(["nft", "delete", "table", "inet", TABLE])
        else:
            for dev in ("eth0", "eth1"):
                a.run(["ip", "link", "set", dev, "up"])
        t_heal = time.monotonic()
        c.wait_holder("dir-a", timeout=15, stable=0.5)
        assert _quorum(c, "dir-a")["quorate"]
        time.sleep(0.5)
    finally:
        arp.signal(signal.SIGTERM)
        arp.popen.wait(timeout=20)
    with open(arp_out) as f:
        samples = json.load(f)["samples"]
    windows = [(t, tuple(sorted(names.get(m, m) for m in macs))) for t, macs in samples]
    assert len(windows) > 300, "the ARP sampler recorded too little"
    double = [t for t, w in windows if len(w) > 1]
    cut = [(t, w) for t, w in windows if t_cut <= t < t_heal]
    last_a = max((t for t, w in cut if "dir-a" in w), default=t_cut)
    first_b = min(t for t, w in cut if w == ("dir-b",))
    heal = [(t, w) for t, w in windows if t >= t_heal]
    first_a_back = min(t for t, w in heal if w == ("dir-a",))
    report = (f"three directors, holder dir-a isolated ({how}): "
              f"dir-a answered ARP until {1000 * (last_a - t_cut):.0f} ms after the cut; dir-b from "
              f"{1000 * (first_b - t_cut):.0f} ms (takeover); two answered {PERIOD * 1000 * len(double):.0f} ms; "
              f"after the heal dir-a answered again at {1000 * (first_a_back - t_heal):.0f} ms; "
              f"runs: {[(w, round(1000 * (t0 - t_cut)), round(1000 * (t1 - t_cut))) for w, t0, t1 in _runs(windows)]}")
    print(report)
    assert not double, report
    # before the cut only dir-a, during it dir-a then dir-b, after the heal dir-b then dir-a
    assert [w for w, _, _ in _runs(windows) if w] == [("dir-a",), ("dir-b",), ("dir-a",)], report
    # dir-a stops at deadtime after the last heartbeat it heard (up to a keepalive before the
    # cut): quorum lost; dir-b answers once dir-a's VIP fell silent on the wire
    assert last_a - t_cut < first_b - t_cut < 3.0, report
    if how == "nft_drop":  # the client saw dir-a until it stopped
        assert (DEADTIME - 2 * KEEPALIVE) / 1000 <= last_a - t_cut, report
    assert not any("dir-c" in w for _, w in windows), report
