"""Run the real heartbeat 3 (/usr/libexec/heartbeat/heartbeat) on a directory of ha.cf, authkeys and
haresources, and say whether it accepts them.

heartbeat reads /etc/ha.d and writes /var/lib/heartbeat and /run/heartbeat, so it runs in its own
mount, UTS, network and PID namespaces (`unshare`, root only): its own /etc/ha.d (the directory
given, over a copy of the machine's resource scripts), tmpfs state directories, host name NODE, and
a network with lo, eth0 (198.18.0.1/24) and eth1 (198.18.1.1/24) on veth pairs, as issue 15's recipe
does. A configuration error stops heartbeat before it opens a socket ("Configuration error,
heartbeat not started"); with a valid configuration (ha.cf, authkeys and the haresources node
check) it locks its pid file (make_daemon), which is the verdict. The namespace's PID 1 then exits,
and the kernel ends every process left in it (heartbeat and its children).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"

_SCRIPT = r"""
set -e
CONF=$1; NODE=$2; WORK=$3
cp -a /etc/ha.d/. "$WORK/"
cp "$CONF"/* "$WORK/"
chmod --reference="$CONF/authkeys" "$WORK/authkeys"
mount --bind "$WORK" /etc/ha.d
mount -t tmpfs tmpfs /var/lib/heartbeat
mkdir -p /var/lib/heartbeat/ccm /var/lib/heartbeat/crm /var/lib/heartbeat/cores/root /var/lib/heartbeat/cores/hacluster
mount -t tmpfs tmpfs /run
mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/rsctmp
hostname "$NODE"
ip link set lo up
ip link add eth0 type veth peer name eth0p; ip link set eth0p up
ip addr add 198.18.0.1/24 brd + dev eth0; ip link set eth0 up
ip link add eth1 type veth peer name eth1p; ip link set eth1p up
ip addr add 198.18.1.1/24 brd + dev eth1; ip link set eth1 up
set +e
"$0" -f >"$WORK/heartbeat.out" 2>&1 &
hb=$!
verdict=timeout
for i in $(seq 1 500); do
    # make_daemon locks the pid file once init_config and the haresources check passed
    if [ -s /run/heartbeat.pid ] || [ -s /var/run/heartbeat.pid ]; then verdict=ok; break; fi
    if ! kill -0 $hb 2>/dev/null; then verdict=refused; break; fi
    sleep 0.02
done
cat "$WORK/heartbeat.out"
echo "@@verdict $verdict"
"""


def available() -> str | None:
    """None when heartbeat can be run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (mount, UTS, network and PID namespaces for heartbeat)"
    if not os.path.exists(HEARTBEAT) or not shutil.which("unshare"):
        return f"needs {HEARTBEAT} and unshare (installed by `make test` as root)"
    return None


def run_heartbeat(conf: Path, work: Path, node: str = "alpha", timeout: float = 20.0) -> tuple[bool, list[str]]:
    """(accepted, heartbeat's log lines without time stamps)."""
    work.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen(["unshare", "--mount", "--uts", "--net", "--pid", "--fork", "--mount-proc",
                          "--kill-child", "--propagation", "private", "sh", "-c", _SCRIPT, HEARTBEAT,
                          str(conf), node, str(work)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()  # unshare --kill-child takes the namespace's processes with it
        out, _ = p.communicate(timeout=10)
    lines = [re.sub(r"^\w+ \d+ [\d:]+ \S+ heartbeat: \[\d+\]: ", "", ln)
             for ln in out.decode(errors="replace").splitlines()]
    verdict = next((ln.split()[1] for ln in lines if ln.startswith("@@verdict ")), "timeout")
    if verdict == "timeout":
        raise AssertionError(f"heartbeat gave no verdict in 10 s: {lines}")
    return verdict == "ok", [ln for ln in lines if not ln.startswith("@@verdict ")]
