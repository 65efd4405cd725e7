"""The capability bounding set of hadirector.service is enough for the daemon and for what
heartbeat users' resource scripts do (docs/operations.md, "The systemd unit"), and no more.

There is no systemd as PID 1 here, so the unit's CapabilityBoundingSet (and NoNewPrivileges) is
applied the way systemd applies it, with util-linux `setpriv` before exec: a one-node cluster in
a network namespace binds the heartbeat port 694 on eth0, adds a VIP with gratuitous ARP, and runs
a resource script that calls `arping` and `ip`, signals another user's process, and tries a
`chown` (refused: no CAP_CHOWN). The client must reach the VIP, and the daemon runs SCHED_RR with
its memory locked ([cluster.realtime] at its defaults: CAP_SYS_NICE, CAP_IPC_LOCK).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from hadirector.commands import install_files
from hdtest import need_root, wait_until

VIP = "198.18.0.100"
SCRIPT = """#!/bin/sh
d={d}
case "$1" in
start)
    arping -c 1 -w 3 -I eth0 198.18.0.10 > $d/arping.out 2>&1; echo $? > $d/arping.rc
    ip -j addr show dev eth0 > $d/ip.out 2>&1; echo $? > $d/ip.rc
    kill -0 $(cat $d/nobody.pid) 2> $d/kill.err; echo $? > $d/kill.rc
    chown 65534 $d/chown-me 2> $d/chown.err; echo $? > $d/chown.rc
    grep -E '^Cap(Bnd|Eff)' /proc/$$/status > $d/caps
    touch $d/running ;;
stop) rm -f $d/running ;;
status) if [ -e $d/running ]; then echo running; else echo stopped; fi ;;
esac
exit 0
"""
CONFIG = """
[cluster]
nodes = ["solo"]
[cluster.timing]
keepalive = "100ms"
deadtime = "500ms"
initdead = "500ms"
[cluster.auth]
key = "caps"
[[cluster.links]]
kind = "ucast"
interface = "eth0"
peers = ["198.18.0.2"]
port = 694
[[groups]]
name = "web"
preferred_node = "solo"
[[groups.resources]]
kind = "vip"
address = "{vip}"
prefixlen = 24
interface = "eth0"
garp_count = 2
[[groups.resources]]
kind = "script"
name = "lvs"
"""
# linux/capability.h
CAP_NUMBERS = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12,
               "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_SYS_ADMIN": 21, "CAP_SYS_NICE": 23}


def _unit_caps() -> list[str]:
    unit = install_files.packaged("systemd/hadirector.service").decode()
    return re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()


def _mask(caps) -> int:
    return sum(1 << CAP_NUMBERS[c] for c in caps)


def test_daemon_and_scripts_run_with_the_units_capabilities(lab, tmp_path):
    need_root("setpriv", "arping")
    caps = _unit_caps()
    lan = lab.switch("lan")
    director, client = lab.host("dir"), lab.host("client")
    director.connect(lan, "198.18.0.2/24")
    client.connect(lan, "198.18.0.10/24")
    work = tmp_path / "work"
    (work / "resource.d").mkdir(parents=True)
    (work / "chown-me").write_text("x")
    script = work / "resource.d" / "lvs"
    script.write_text(SCRIPT.format(d=work))
    script.chmod(0o755)
    cfg = work / "cluster.toml"
    cfg.write_text(CONFIG.format(vip=VIP))
    nobody = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "60"],
                              start_new_session=True)
    try:
        (work / "nobody.pid").write_text(f"{nobody.pid}\n")
        bounding = "-all," + ",".join("+" + c[4:].lower() for c in caps)
        daemon = director.spawn(["setpriv", "--bounding-set", bounding, "--no-new-privs", sys.executable, "-m",
                                 "hadirector", "run", "-c", str(cfg), "--node", "solo", "--state-dir",
                                 str(work / "state"), "--resource-dir", str(work / "resource.d")], name="hadirector")
        wait_until(lambda: (work / "running").exists() or not daemon.alive(), 20, 0.1,
                   lambda: f"the group to start: {daemon.output()}")
        assert daemon.alive(), daemon.output()
        # the restriction took effect: the daemon has exactly the unit's capabilities
        status = open(f"/proc/{daemon.pid}/status").read()
        eff = int(re.search(r"^CapEff:\s+([0-9a-f]+)", status, re.M).group(1), 16)
        bnd = int(re.search(r"^CapBnd:\s+([0-9a-f]+)", status, re.M).group(1), 16)
        assert eff == bnd == _mask(caps), (hex(eff), hex(bnd), hex(_mask(caps)))
        # [cluster.realtime] at its defaults took effect with them: SCHED_RR priority 1, memory locked
        assert os.sched_getscheduler(daemon.pid) & ~os.SCHED_RESET_ON_FORK == os.SCHED_RR
        assert os.sched_getparam(daemon.pid).sched_priority == 1
        assert int(re.search(r"^VmLck:\s+(\d+)", status, re.M).group(1)) > 0, status
        # the daemon did its part: heartbeat port 694 bound to eth0, VIP added and announced
        wait_until(lambda: client.run(["ping", "-c", "1", "-W", "1", VIP], check=False).returncode == 0, 10, 0.2,
                   "the client to reach the VIP")
        assert client.neigh_mac(VIP) == director.mac("eth0")
        # and the resource script: arping, ip and kill work; chown does not
        assert (work / "arping.rc").read_text().strip() == "0", (work / "arping.out").read_text()
        assert (work / "ip.rc").read_text().strip() == "0", (work / "ip.out").read_text()
        assert (work / "kill.rc").read_text().strip() == "0", (work / "kill.err").read_text()
        assert (work / "chown.rc").read_text().strip() != "0"
        assert "Operation not permitted" in (work / "chown.err").read_text()
        assert "CapEff:\t" + format(_mask(caps), "016x") in (work / "caps").read_text()
        log = daemon.output()
        assert "Permission denied" not in log and "Operation not permitted" not in log, log
        daemon.signal(signal.SIGTERM)
        wait_until(lambda: not daemon.alive(), 20, 0.1, "the daemon to leave")
        assert not director.has_address(VIP)
    finally:
        nobody.kill()
        nobody.wait(5)
