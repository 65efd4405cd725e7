"""The whole stack in namespaces: two directors run `hadirector run --ha-dir` with
`haresources: dir-a VIP ldirectord`, the balancer in the kernel (nftables, direct routing), two
real servers prepared with `hadirector realserver`. The client is balanced across the reals in
weight ratio through whichever director holds the VIP, before and after the holder loses power."""

from __future__ import annotations

import collections
import subprocess
import sys

from hadirector.lab.hacluster import HaCluster
from hadirector.lab.presets import director_pair
from hdtest import wait_until

LDIRECTORD_CF = """checktimeout=1
checkinterval=1
quiescent=no

virtual=198.18.0.100:80
	real=198.18.0.11:80 gate 3
	real=198.18.0.12:80 gate 1
	scheduler=wrr
	protocol=tcp
	checktype=connect
"""


def _spread(c: HaCluster, n: int) -> collections.Counter:
    got = collections.Counter()
    for _ in range(n):
        try:
            got[c.client_get(timeout=1.0).strip()] += 1
        except Exception:  # noqa: BLE001
            got["failed"] += 1
    return got


def _wait_spread(c: HaCluster, timeout: float) -> None:
    # connection refused / timeouts while the balancer comes up are "not yet"
    wait_until(lambda: c.client_get(timeout=0.5).strip() in ("real1", "real2"), timeout, 0.1,
               lambda: "the client to reach a real through the VIP\n"
               + "\n".join(f"[{n}]\n{c.log(n)[-3000:]}" for n in c.hosts), ignore=(Exception,))


def test_dr_balancer_follows_the_vip(lab, tmp_path):
    pair = director_pair(lab, hb_link=True)
    reals = []
    for i, addr in ((1, "198.18.0.11"), (2, "198.18.0.12")):
        r = lab.host(f"real{i}")
        r.connect(pair.lan, f"{addr}/24")
        r.run([sys.executable, "-m", "hadirector", "realserver", "--vip", pair.vip, "up"])
        r.http_server(port=80, identity=f"real{i}")
        reals.append(r)
    assert reals[0].has_address(pair.vip)  # the VIP on lo, hidden from ARP
    c = HaCluster(pair, str(tmp_path), keepalive=100, deadtime=500, auto_failback="off",
                  extra_resources="ldirectord", ldirectord_cf=LDIRECTORD_CF)
    c.start("dir-a")
    c.start("dir-b")
    c.wait_holder("dir-a", timeout=15, stable=0.3)
    _wait_spread(c, 15)
    got = _spread(c, 400)
    assert got["failed"] == 0, got
    assert abs(got["real1"] / 400 - 0.75) < 0.05, got
    # the backup runs health checks but no data plane (only flow sync's hold table)
    tables = pair.b.run(["nft", "list", "tables"]).stdout
    assert "hadirector_eth0" not in tables and "ip hadirector" not in tables, tables

    c.power_off("dir-a")
    c.wait_holder("dir-b", timeout=10)
    _wait_spread(c, 10)
    got = _spread(c, 400)
    assert got["failed"] == 0, got
    assert abs(got["real1"] / 400 - 0.75) < 0.05, got
    lvs = subprocess.run([sys.executable, "-m", "hadirector", "lvs", "-n", "--state-dir",
                          c.state_dir("dir-b")], capture_output=True, text=True, timeout=30)
    assert lvs.returncode == 0, lvs.stderr
    assert "TCP  198.18.0.100:80 wrr" in lvs.stdout and "Route   3" in lvs.stdout, lvs.stdout
