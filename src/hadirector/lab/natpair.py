"""Two NAT directors in a lab, as keepalived users build LVS-NAT with conntrackd: the client on
the lan (eth0, VIP 198.18.0.100), two reals on the inside link (eth1, the hb switch, which also
carries heartbeats) whose route to the client network goes via the inside VIP 198.18.1.1, which
moves with the group (haresources `dir-a VIP INSIDE-VIP ldirectord`). Each director runs
`hadirector run`; conntrackd runs on both by default (NAT on two nodes, config/sync.py), or not
at all with `conntrackd=False` (the same ha.d converted to native TOML with
`[balancer.conntrackd] enabled = false`).

Used by tests/integration/test_failover_nat.py and bench/sync_nat.py:

    c = nat_cluster(lab, workdir)            # dir-a holds the VIPs, the client reaches a real
    c.power_off("dir-a"); c.wait_holder("dir-b")
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import tomli_w

from .hacluster import HaCluster
from .presets import director_pair
from .topology import Lab

INSIDE_VIP = "198.18.1.1"
REALS = (("real1", "198.18.1.11"), ("real2", "198.18.1.12"))
LDIRECTORD_CF = """checktimeout=1
checkinterval=1
quiescent=no

virtual=198.18.0.100:80
	real=198.18.1.11:80 masq 1
	real=198.18.1.12:80 masq 1
	scheduler={scheduler}
	protocol=tcp
	checktype=connect
"""


def nat_cluster(lab: Lab, workdir: str, *, conntrackd: bool = True, scheduler: str = "wlc",
                http: str = "python", initdead: int = 2500, timeout: float = 15.0) -> HaCluster:
    """Start both directors and wait until dir-a holds the VIP and the client reaches a real."""
    from ..errors import HadirectorError
    pair = director_pair(lab, hb_link=True)
    for d in pair.directors:
        d.enable_forwarding()
    for name, addr in REALS:
        r = lab.host(name)
        r.connect(pair.hb, f"{addr}/24")
        r.route("198.18.0.0/24", via=INSIDE_VIP)
        r.http_server(port=80, identity=name, kind=http)
    c = HaCluster(pair, workdir, keepalive=100, deadtime=500, initdead=initdead, auto_failback="off",
                  extra_resources=f"{INSIDE_VIP}/24/eth1 ldirectord",
                  ldirectord_cf=LDIRECTORD_CF.format(scheduler=scheduler))
    for n in ("dir-a", "dir-b"):
        if conntrackd:  # the default for NAT on two nodes: nothing to configure
            c.start(n)
            continue
        toml = os.path.join(workdir, f"{n}.toml")
        subprocess.run([sys.executable, "-m", "hadirector", "convert", "--ha-dir", c.ha_dir(n),
                        "--node", n, "-o", toml], check=True, capture_output=True, timeout=30)
        with open(toml, "rb") as f:
            data = tomllib.load(f)
        data["balancer"].setdefault("conntrackd", {})["enabled"] = False
        with open(toml, "wb") as f:
            tomli_w.dump(data, f)
        c.procs[n] = c.hosts[n].spawn([sys.executable, "-m", "hadirector", "run", "-c", toml, "--node", n,
                                       "--state-dir", c.state_dir(n)], name="hadirector")
    c.wait_holder("dir-a", timeout=timeout, stable=0.3)
    import time
    t_end = time.monotonic() + timeout
    while True:
        try:
            if c.client_get(timeout=0.5).strip() in ("real1", "real2"):
                return c
        except (OSError, HadirectorError):
            pass
        if time.monotonic() > t_end:
            raise AssertionError("the client did not reach a real through the VIP\n" + "\n".join(
                f"[{n}]\n{c.log(n)[-3000:]}" for n in c.hosts))
        time.sleep(0.1)
