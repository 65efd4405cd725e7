"""ha.cf `realtime` / `rtprio` and [cluster.realtime] act on the running daemon (daemon/realtime.py):
the kernel's view of the `hadirector run` process (its policy and priority, VmLck in
/proc/PID/status) is what the configuration asks, a process it starts runs at SCHED_OTHER (as
heartbeat's hb_setup_child puts its children back to normal time), and a daemon the kernel refuses
both to warns, says so in `status`, and runs on.

heartbeat 3.0.6 run with the same ha.cf lines shows SCHED_RR priority 1 without a realtime line and
50 with `rtprio 50` (daemon/realtime.py).
"""

from __future__ import annotations

import json
import sys
import os

import pytest

from daemon_util import SOLO_CLUSTER, Solo, ctl, pair_cluster
from hdtest import need_root, wait_until

# a resource script that notes the policy it was started with
PROBE = """#!/bin/sh
case "$1" in
  start) chrt -p $$ > "$(dirname "$0")/probe.sched"; exit 0 ;;
  stop) rm -f "$(dirname "$0")/probe.sched"; exit 0 ;;
  status) if [ -e "$(dirname "$0")/probe.sched" ]; then echo running; else echo stopped; exit 3; fi ;;
esac
"""

POLICY = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_RR: "SCHED_RR", os.SCHED_FIFO: "SCHED_FIFO"}


def kernel_view(pid: int) -> tuple[str, int, int]:
    """(policy, realtime priority, VmLck KiB) of process `pid`, as the kernel has them."""
    policy = os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK
    prio = os.sched_getparam(pid).sched_priority
    with open(f"/proc/{pid}/status") as f:
        lck = next(int(line.split()[1]) for line in f if line.startswith("VmLck:"))
    return POLICY.get(policy, str(policy)), prio, lck


def sched_file_policy(pid: int) -> int:
    """The `policy` line of /proc/PID/sched (the scheduler's own record)."""
    with open(f"/proc/{pid}/sched") as f:
        return next(int(line.split(":")[1]) for line in f if line.startswith("policy"))


@pytest.mark.parametrize("hacf, want", [
    ("", ("SCHED_RR", 1, True)),  # heartbeat's default: realtime on, the lowest SCHED_RR priority
    ("realtime on\nrtprio 50\n", ("SCHED_RR", 50, True)),
    ("realtime off\n", ("SCHED_OTHER", 0, False)),
], ids=["default", "rtprio-50", "off"])
def test_hacf_realtime_takes_effect(lab, tmp_path, hacf, want):
    need_root("chrt")
    c = pair_cluster(lab, tmp_path, extra_hacf=hacf, extra_resources="probe")
    d = os.path.join(c.ha_dir("dir-a"), "resource.d")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "probe"), "w") as f:
        f.write(PROBE)
    os.chmod(os.path.join(d, "probe"), 0o755)
    proc = c.start("dir-a")
    c.wait_holder("dir-a", timeout=20)
    policy, prio, lck = kernel_view(proc.pid)
    assert (policy, prio, lck > 0) == want, (policy, prio, lck, c.log("dir-a")[-2000:])
    assert sched_file_policy(proc.pid) == {"SCHED_OTHER": 0, "SCHED_RR": 2}[want[0]]
    # the daemon's whole memory is locked, not a part: VmLck covers what is mapped (VmSize)
    if want[2]:
        with open(f"/proc/{proc.pid}/status") as f:
            st = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmSize", "VmLck"))}
        assert st["VmLck"] >= 0.9 * st["VmSize"], st
    # a process it starts (the resource script) runs at normal priority
    probe = wait_until(lambda: open(os.path.join(d, "probe.sched")).read()
                       if os.path.exists(os.path.join(d, "probe.sched")) else None, 10, 0.05, "the probe's note")
    assert "SCHED_OTHER" in probe and "priority: 0" in probe, probe
    st = json.loads(ctl(c, "dir-a", "status", "--json").stdout)["realtime"]
    assert (st["policy"] or "SCHED_OTHER", st["priority"] or 0, st["locked"]) == want, st
    assert st["problems"] == [], st
    text = ctl(c, "dir-a", "status").stdout
    line = next(ln for ln in text.splitlines() if ln.startswith("realtime:"))
    if want[2]:
        assert line.startswith(f"realtime: SCHED_RR priority {want[1]}, memory locked ("), line
        assert f"realtime: SCHED_RR priority {want[1]} on 1 thread(s)" in c.log("dir-a")
    else:
        assert line == "realtime: off (normal scheduling, memory not locked)", line


def test_toml_fifo_without_locking(lab, tmp_path):
    need_root()
    solo = Solo(lab, tmp_path, SOLO_CLUSTER + '[cluster.realtime]\npolicy = "fifo"\npriority = 5\n'
                "lock_memory = false\n")
    proc = solo.start()
    solo.wait_ready()
    assert kernel_view(proc.pid) == ("SCHED_FIFO", 5, 0), solo.log()[-2000:]
    st = json.loads(solo.ctl("status", "--json").stdout)["realtime"]
    assert (st["policy"], st["priority"], st["lock_memory"], st["locked"]) == ("SCHED_FIFO", 5, False, False), st
    assert "memory not locked (lock_memory = false)" in solo.log()


def test_refused_by_the_kernel_warns_and_runs_on(lab, tmp_path):
    """Root without CAP_SYS_NICE and CAP_IPC_LOCK (dropped from the bounding set, as a systemd unit
    without them does), RLIMIT_RTPRIO 0 and RLIMIT_MEMLOCK 8 MiB: both steps are refused, each is a
    WARNING naming the call and the cause, and the daemon serves at normal priority."""
    need_root("setpriv", "prlimit")
    solo = Solo(lab, tmp_path, SOLO_CLUSTER)
    argv = ["prlimit", "--rtprio=0", "--memlock=8388608", "setpriv", "--bounding-set=-sys_nice,-ipc_lock",
            "--inh-caps=-sys_nice,-ipc_lock"]
    proc = solo.host.spawn(argv + [sys.executable, "-m", "hadirector", "run", "-c", str(solo.cfg),
                                   "--node", "solo", "--state-dir", solo.state], name="hadirector")
    solo.proc = proc
    solo.wait_ready()
    log = solo.log()
    warnings = [ln for ln in log.splitlines() if "WARNING" in ln and "realtime" in ln]
    assert any("cannot run at SCHED_RR priority 1: sched_setscheduler(SCHED_RR, priority 1): Operation not "
               "permitted (no CAP_SYS_NICE, and RLIMIT_RTPRIO is 0, below 1" in ln for ln in warnings), log
    assert any("cannot lock the daemon's memory: RLIMIT_MEMLOCK is 8192 KiB" in ln for ln in warnings), log
    assert kernel_view(proc.pid) == ("SCHED_OTHER", 0, 0)
    st = json.loads(solo.ctl("status", "--json").stdout)
    assert st["realtime"]["policy"] is None and st["realtime"]["locked"] is False
    assert len(st["realtime"]["problems"]) == 2, st["realtime"]
    assert st["phase"] in ("running", "starting (initdead)")
    line = next(ln for ln in solo.ctl("status").stdout.splitlines() if ln.startswith("realtime:"))
    assert line.startswith("realtime: NOT in effect (normal scheduling), memory NOT locked; "), line


def test_the_proxy_on_a_realtime_loop_is_warned_about(lab, tmp_path):
    need_root()
    solo = Solo(lab, tmp_path, SOLO_CLUSTER + '[balancer]\ndataplane = "proxy"\n')
    solo.start()
    solo.wait_ready()
    assert "WARNING: node solo: realtime: the userspace proxy relays connections on the daemon's loop" in solo.log()
