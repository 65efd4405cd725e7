"""Debian's heartbeat 3.0.6 (/usr/libexec/heartbeat/heartbeat, v1 haresources mode) as the pair.

How two instances share one machine: each node's heartbeat sees

  /etc/ha.d           /etc/netns/<netns>/ha.d, which `ip netns exec` bind-mounts over /etc/ha.d
                      (a copy of the machine's /etc/ha.d plus our ha.cf, authkeys, haresources);
  /var/lib/heartbeat  <workdir>/<node>/state, bind-mounted inside a private mount namespace made
                      by `unshare -m` (its fifo, hb_uuid, hb_generation, hostcache: kept across
                      restarts, as a machine keeps its disk);
  /run                a fresh tmpfs per start (pid file, /run/heartbeat, resource-agents' tmp);
  its host name       the node's name, in its own UTS namespace (heartbeat names itself by uname -n).

The process we spawn ends up being heartbeat's master itself (ip netns exec, unshare and sh all
exec), run with -f so it stays in the foreground. Everything else of the node lives in that mount
namespace, so the node's processes are: the master, its descendants, and whatever else shares its
mount namespace (send_arp, which IPaddr2 starts in the background, and children a dying master
leaves behind, such as its hb_signal_giveup_resources child blocked on the fifo, re-parented to
init).

Timing. With `Setting(defaults=True)` ha.cf has no keepalive/deadtime/warntime/initdead lines and
heartbeat's own defaults apply (heartbeat/config.c, the Directives table and init_config):
keepalive 1000 ms, deadtime 30000 ms, warntime deadtime/2 = 15000 ms, initdead = deadtime
(30000 ms) because deadtime > 10 s (for deadtime < 6 s it would be 12000 ms, else 2 x deadtime).
Otherwise the Setting's values are written in ms; init_config refuses deadtime <= 2 x keepalive
and initdead < deadtime (and only warns when initdead < 10 s), which we check first so that a bad
Setting is a clear ValueError rather than a heartbeat that will not start.

Detection: check_for_timeouts runs from polled_input_dispatch every POLL_INTERVAL (250 ms,
heartbeat.c), so the peer is declared dead ("node X: is dead", mark_node_dead) deadtime to
deadtime + 250 ms after its last heartbeat, i.e. deadtime - keepalive to deadtime + 250 ms after a
crash (measured at 100/500: 545-790 ms); taking the VIP then runs shell scripts (rc.d/status,
mach_down, ResourceManager, IPaddr2 via resource.d) at normal priority, another 0.3-0.7 s here.

Start-up: when both nodes come up together, heartbeat v1 with auto_failback off waits RQSTDELAY
(10 s, compiled in, include/heartbeat.h) once it has the peer's resource message (process_resources
in hb_resource.c sets local_takeover_time; polled_input_dispatch in heartbeat.c acts on it) before
the owner acquires its resources: the first wait_one_holder takes 11-16 s at any Setting (give
it 30 s or more; a node started alone also waits initdead, 30 s at the defaults). recover() hears
the peer again within 0.5-2 s (the peer already holds everything and says so) but returns only
`young_for()` (5 s + 2 keepalives + 0.3 s) after the start: a freshly started heartbeat announces
deadtime + 2 s for its first 5 s, and a crash inside that window is detected 2 s late.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

try:
    from .base import Pair, Setting
    from .topology import NODES, VIP
except ImportError:  # run as a script from bench/peers
    from base import Pair, Setting  # type: ignore[no-redef]
    from topology import NODES, VIP  # type: ignore[no-redef]

HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"


def _zombie(pid: int) -> bool:
    """True when `pid` has exited and waits to be reaped (or is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True
HB_STANDBY = "/usr/share/heartbeat/hb_standby"
CL_STATUS = "cl_status"
HB_ADDR = {"dir-a": "198.18.1.2", "dir-b": "198.18.1.3"}
# heartbeat's own state directories under /var/lib/heartbeat, as the Debian package ships them
# (ccm, crm, pengine belong to hacluster:haclient, mode 750)
STATE_DIRS = ("api", "casual", "ckpt", "lrm", "cores/root", "cores/hacluster")
HACLUSTER_DIRS = ("ccm", "crm", "pengine")


def check_setting(s: Setting) -> None:
    """The checks heartbeat's init_config (config.c) makes on the timings, made beforehand."""
    if s.defaults:
        return
    if s.keepalive_ms is None or s.deadtime_ms is None:
        raise ValueError(f"setting {s.label}: heartbeat needs keepalive_ms and deadtime_ms "
                         "(or defaults=True)")
    for name in ("keepalive_ms", "deadtime_ms", "warntime_ms", "initdead_ms"):
        v = getattr(s, name)
        if v is not None and v <= 0:
            raise ValueError(f"setting {s.label}: {name} must be > 0, not {v}")
    if s.deadtime_ms <= 2 * s.keepalive_ms:
        raise ValueError(f"setting {s.label}: heartbeat refuses deadtime {s.deadtime_ms} ms <= "
                         f"2 x keepalive {s.keepalive_ms} ms")
    if s.initdead_ms is not None and s.initdead_ms < s.deadtime_ms:
        raise ValueError(f"setting {s.label}: heartbeat refuses initdead {s.initdead_ms} ms < "
                         f"deadtime {s.deadtime_ms} ms")


def ha_cf(node: str, setting: Setting, logdir: str) -> str:
    peer = NODES[1 - NODES.index(node)]
    lines = [
        f"ucast eth1 {HB_ADDR[peer]}",  # the heartbeat travels on eth1 only
        "node dir-a",
        "node dir-b",
        "auto_failback off",
        "crm no",  # v1: haresources, no Pacemaker
        "use_logd no",
        f"logfile {logdir}/ha-log",
        f"debugfile {logdir}/ha-debug",
        # realtime is left at its default, on (config.c: "realtime" defaults to "true"): heartbeat
        # runs SCHED_RR at the lowest RR priority (cl_make_realtime in cluster-glue realtime.c,
        # hb_realtime_prio -1) and tries mlockall (here it logs "Cannot lock ourselves into
        # memory", the memlock limit cannot be raised; it runs on regardless)
    ]
    if not setting.defaults:
        for key, v in (("keepalive", setting.keepalive_ms), ("deadtime", setting.deadtime_ms),
                       ("warntime", setting.warntime_ms), ("initdead", setting.initdead_ms)):
            if v is not None:
                lines.append(f"{key} {v}ms")
    return "\n".join(lines) + "\n"


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) from /proc/PID/stat, None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(rest[1]), rest[0], int(rest[19])


def _mntns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


class Heartbeat3Pair(Pair):
    system = "heartbeat3"

    def __init__(self, lab, workdir: str, setting: Setting):
        check_setting(setting)
        if not os.path.exists(HEARTBEAT):
            raise RuntimeError(f"{HEARTBEAT} is not installed (apt-get install heartbeat)")
        super().__init__(lab, workdir, setting)
        self.procs: dict = {}  # node -> LabProcess (the heartbeat master)
        self.mntns: dict[str, str] = {}  # node -> its mount namespace (readlink of ns/mnt)
        self.crashes = {n: 0 for n in NODES}
        self.down: set[str] = set()  # crashed and not started since
        self.started: dict[str, float] = {}  # node -> monotonic time of its last start
        self.etc_dirs: list[str] = []  # the /etc/netns/<netns>/ha.d we made

    # ------------------------------------------------------------------ files
    def node_dir(self, node: str) -> str:
        return os.path.join(self.workdir, node)

    def _prepare(self, node: str) -> None:
        d = self.node_dir(node)
        state = os.path.join(d, "state")
        if not os.path.isdir(state):
            for sub in STATE_DIRS + HACLUSTER_DIRS:
                os.makedirs(os.path.join(state, sub), exist_ok=True)
            for sub in HACLUSTER_DIRS:
                shutil.chown(os.path.join(state, sub), "hacluster", "haclient")
                os.chmod(os.path.join(state, sub), 0o750)
        netns_etc = f"/etc/netns/{self.lab.host(node).netns}"
        ha_d = os.path.join(netns_etc, "ha.d")
        if os.path.isdir(ha_d) and ha_d not in self.etc_dirs:
            raise RuntimeError(f"{ha_d} exists and is not this driver's; remove it first")
        if not os.path.isdir(ha_d):
            if ha_d not in self.etc_dirs:
                self.etc_dirs.append(ha_d)
            shutil.copytree("/etc/ha.d", ha_d, symlinks=True)
            with open(os.path.join(ha_d, "ha.cf"), "w") as f:
                f.write(ha_cf(node, self.setting, d))
            fd = os.open(os.path.join(ha_d, "authkeys"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("auth 1\n1 sha1 secret\n")
            os.chmod(os.path.join(ha_d, "authkeys"), 0o600)
            with open(os.path.join(ha_d, "haresources"), "w") as f:
                f.write(f"dir-a IPaddr2::{VIP}/24/eth0\n")

    # ------------------------------------------------------------------ processes
    def start(self, node: str) -> None:
        if node not in NODES:
            raise ValueError(f"unknown node {node!r}; expected one of {', '.join(NODES)}")
        p = self.procs.get(node)
        if p is not None and p.alive():
            raise RuntimeError(f"heartbeat already runs on {node} (pid {p.pid})")
        self._prepare(node)
        state = os.path.join(self.node_dir(node), "state")
        inner = f"hostname {node}; exec {HEARTBEAT} -f"
        outer = (f"mount --bind {state} /var/lib/heartbeat && mount -t tmpfs tmpfs /run && "
                 "mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/rsctmp && "
                 f"exec unshare -u sh -c '{inner}'")
        proc = self.lab.host(node).spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", outer],
                                         name="heartbeat")
        self.procs[node] = proc
        self.started[node] = time.monotonic()
        self.down.discard(node)
        # make_daemon writes the pid file once init_config and the haresources check passed
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"heartbeat on {node} exited ({proc.popen.returncode}):\n"
                                   + self._tail(node))
            if os.path.exists(f"/proc/{proc.pid}/root/run/heartbeat.pid"):
                self.mntns[node] = _mntns(proc.pid) or ""
                return
            time.sleep(0.02)
        raise RuntimeError(f"heartbeat on {node} wrote no pid file within 15 s:\n" + self._tail(node))

    def _processes(self, node: str) -> list[tuple[int, int]]:
        """(pid, start time) of every live process of the node: the master, its descendants and
        whatever shares its mount namespace."""
        p = self.procs.get(node)
        ns = self.mntns.get(node)
        found: dict[int, int] = {}
        table = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = _stat(int(name))
                if st is not None and st[1] != "Z":
                    table[int(name)] = st
        if p is not None and p.pid in table:
            found[p.pid] = table[p.pid][2]
            grew = True
            while grew:  # bounded: each pass adds at least one of finitely many pids
                grew = False
                for pid, (ppid, _state, start) in table.items():
                    if ppid in found and pid not in found:
                        found[pid] = start
                        grew = True
        if ns:
            for pid, (_ppid, _state, start) in table.items():
                if pid not in found and _mntns(pid) == ns:
                    found[pid] = start
        return list(found.items())

    def _kill(self, procs: list[tuple[int, int]], sig: int) -> None:
        for pid, start in procs:
            st = _stat(pid)
            if st is not None and st[2] == start:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def crash(self, node: str) -> None:
        victims = self._processes(node)
        if not victims:
            raise RuntimeError(f"crash {node}: heartbeat does not run there")
        p = self.procs[node]
        p.signal(signal.SIGKILL)  # killpg: the master and its children in its group, one call
        self._kill(victims, signal.SIGKILL)
        self.lab.links(node, False)
        self.crashes[node] += 1
        self.down.add(node)
        # anything forked between the listing and the kill (a resource script): sweep the
        # namespace again, bounded
        for _ in range(5):
            rest = self._processes(node)
            if not rest:
                break
            self._kill(rest, signal.SIGKILL)
            time.sleep(0.01)
        try:
            p.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def recover(self, node: str, timeout: float = 120.0) -> None:
        self.lab.clear_vip(node)
        self.lab.links(node, True)
        self.start(node)
        self._wait(lambda: self._settled(), timeout, f"{self.lab.other(node)} to hear {node} again")

    def switchover(self, node: str) -> None:
        p = self.procs.get(node)
        if p is None or not p.alive():
            raise RuntimeError(f"switchover {node}: heartbeat does not run there")
        r = self._in_node(node, [HB_STANDBY, "all"])
        if r.returncode != 0:
            raise RuntimeError(f"hb_standby on {node} failed ({r.returncode}): "
                               f"{(r.stderr or r.stdout).strip()}")

    # ------------------------------------------------------------------ state
    def _in_node(self, node: str, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess:
        """Run argv inside the node's heartbeat namespaces (mount: its /etc/ha.d, /var/lib/heartbeat
        and API socket; uts: its name; net)."""
        pid = self.procs[node].pid
        try:
            return subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "-n", *argv],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout} s")

    def _status(self, node: str, *args: str) -> str:
        r = self._in_node(node, [CL_STATUS, *args], timeout=5)
        return r.stdout.strip() if r.returncode == 0 else f"?{r.returncode}"

    def young_for(self) -> float:
        """How long after its start a node still announces a longer deadtime: heartbeat's
        initialize_heartbeat (heartbeat.c) calls hb_add_deadtime(2000) and hb_pop_deadtime only
        5000 ms later, and the peer uses the deadtime each status message carries (F_DT), so for
        its first 5 s a node is declared dead only after deadtime + 2 s. Plus two keepalives for
        the status message with the normal deadtime to arrive, and a margin."""
        keepalive = 1000 if self.setting.defaults else self.setting.keepalive_ms
        return 5.0 + 2 * keepalive / 1000 + 0.3

    def _settled(self) -> bool:
        """Both heartbeats run, each sees the other active, neither in a resource transition
        (cl_status rscstatus: hb_rsc_resource_state answers "transition" until hb_rsc_isstable),
        and neither started so recently that it still announces deadtime + 2 s (young_for)."""
        for n in NODES:
            p = self.procs.get(n)
            if p is None or not p.alive():
                if p is not None and n not in self.down:
                    raise RuntimeError(f"heartbeat on {n} exited by itself ({p.popen.returncode}):\n"
                                       + self._tail(n))
                return False
        if any(time.monotonic() - self.started[n] < self.young_for() for n in NODES):
            return False
        for n in NODES:
            if self._status(n, "nodestatus", self.lab.other(n)) != "active":
                return False
            rsc = self._status(n, "rscstatus")
            if rsc == "transition" or rsc.startswith("?"):
                return False
        return True

    def wait_one_holder(self, timeout: float) -> str:
        def ok() -> bool:
            return len(self.lab.holders()) == 1 and self._settled()
        self._wait(ok, timeout, "exactly one VIP holder with both heartbeats settled")
        time.sleep(0.2)  # and still so a moment later
        self._wait(ok, timeout, "exactly one VIP holder with both heartbeats settled")
        return self.lab.holders()[0]

    def _wait(self, cond, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        raise RuntimeError(f"heartbeat3: no {what} within {timeout} s (holders {self.lab.holders()})\n"
                           + "\n".join(f"--- {n}:\n{self._tail(n)}" for n in NODES))

    def dead_declarations(self) -> dict[str, int]:
        """node -> how many times its peer's log says "node <node>: is dead" (check_for_timeouts
        in heartbeat.c logs exactly this when deadtime passes without a heartbeat)."""
        return {n: self.log(self.lab.other(n)).count(f"node {n}: is dead") for n in NODES}

    def false_detections(self) -> int:
        """Dead declarations beyond the one each crash() of that node is expected to cause."""
        return sum(max(0, c - self.crashes[n]) for n, c in self.dead_declarations().items())

    def log(self, node: str) -> str:
        path = os.path.join(self.node_dir(node), "ha-log")
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _tail(self, node: str, n: int = 3000) -> str:
        p = self.procs.get(node)
        out = p.output()[-800:] if p is not None else ""
        return self.log(node)[-n:] + (f"\n[stdout/stderr]\n{out}" if out.strip() else "")

    def stop(self) -> None:
        errors = []
        live = {n: self._processes(n) for n in NODES if n in self.procs}
        for n, procs in live.items():
            self._kill([(pid, st) for pid, st in procs if pid == self.procs[n].pid], signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(p.alive() for p in self.procs.values()):
            time.sleep(0.05)
        for n in live:
            for _ in range(40):  # up to 2 s; a killed process that nobody reaps stays a zombie
                rest = [(pid, st) for pid, st in self._processes(n) if not _zombie(pid)]
                if not rest:
                    break
                self._kill(rest, signal.SIGKILL)
                time.sleep(0.05)
            else:
                errors.append(f"{n}: processes left {rest}")
            try:
                self.procs[n].popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                errors.append(f"{n}: heartbeat master {self.procs[n].pid} did not exit")
        for d in self.etc_dirs:  # our ha.d, then /etc/netns/<netns> if nothing else is in it
            shutil.rmtree(d, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(d))
            except OSError:
                pass
        self.etc_dirs.clear()
        if errors:  # said, not raised: a stop is cleanup, and the other pairs must be stopped too
            print("heartbeat3 stop: " + "; ".join(errors), file=sys.stderr, flush=True)
