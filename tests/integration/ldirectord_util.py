"""Run the real ldirectord (resource-agents, /usr/sbin/ldirectord) and read the IPVS table it builds.

This kernel has no IPVS, so ldirectord gets a stand-in `ipvsadm`: in debug mode (`-d`) ldirectord
runs `./ipvsadm` from its working directory when that file exists (ldirectord: `if ($DEBUG>0 and
-f "./ipvsadm")`). The stand-in keeps the table in a JSON file and prints it back in the format
`ipvsadm -L -n [--thresholds]` has, which is what ldirectord parses (ld_read_ipvsadm); -A/-E/-D,
-a/-e/-d refuse what ipvsadm refuses (an existing destination added, a missing one edited).
ldirectord's own decisions - which reals it adds, with which weight, when it adds the fallback and
runs the fallbackcommand - are then compared with ours for the same file and the same health.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LDIRECTORD = "/usr/sbin/ldirectord"

FAKE_IPVSADM = r'''#!PYTHON
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "table.json")
a = sys.argv[1:]
with open(os.path.join(here, "ipvsadm.log"), "a") as f:
    f.write(" ".join(a) + "\n")
try:
    with open(path) as f:
        t = json.load(f)
except FileNotFoundError:
    t = []
def opt(flag, default=None):
    return a[a.index(flag) + 1] if flag in a else default
def fail(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(2)
cmd = a[0] if a else "-L"
if cmd in ("-L", "-l"):
    thr = "--thresholds" in a
    print("IP Virtual Server version 1.2.1 (size=4096)")
    print("Prot LocalAddress:Port Scheduler Flags")
    print("  -> RemoteAddress:Port           " + ("Uthreshold Lthreshold ActiveConn InActConn" if thr
                                                  else "Forward Weight ActiveConn InActConn"))
    for s in t:
        print(f"{s['proto']:<4} {s['vip']} {s['sched']}" + (f" persistent {s['p']}" if s.get("p") else ""))
        for r in s["reals"]:
            if thr:
                print(f"  -> {r['rip']:<28} {r['x']:<10} {r['y']:<10} 0          0")
            else:
                print(f"  -> {r['rip']:<28} {r['fwd']:<7} {r['w']:<6} 0          0")
    sys.exit(0)
proto, vip = next(((p, opt(f)) for f, p in (("-t", "TCP"), ("-u", "UDP"), ("-f", "FWM")) if f in a), (None, None))
svc = next((s for s in t if s["proto"] == proto and s["vip"] == vip), None)
if cmd in ("-A", "-E"):
    if (cmd == "-A") == (svc is not None):
        fail("Service already exists" if svc else "No such service")
    if svc is None:
        svc = {"proto": proto, "vip": vip, "reals": []}
        t.append(svc)
    svc["sched"], svc["p"] = opt("-s", "wlc"), opt("-p")
elif cmd == "-D":
    if svc is None:
        fail("No such service")
    t.remove(svc)
elif cmd in ("-a", "-e", "-d"):
    if svc is None:
        fail("No such service")
    rip = opt("-r")
    if proto != "FWM" and not rip.endswith("]") and rip.count(":") != 1:
        rip += ":" + vip.rsplit(":", 1)[1]
    r = next((x for x in svc["reals"] if x["rip"] == rip), None)
    if cmd == "-d":
        if r is None:
            fail("No such destination")
        svc["reals"].remove(r)
    else:
        if (cmd == "-a") == (r is not None):
            fail("Destination already exists" if r else "No such destination")
        if r is None:
            r = {"rip": rip}
            svc["reals"].insert(0, r)  # ip_vs_add_dest links a new destination at the head
        fwd = "Route" if "-g" in a else "Masq" if "-m" in a else "Tunnel" if "-i" in a else r.get("fwd", "Route")
        r.update(fwd=fwd, w=int(opt("-w", r.get("w", 1))), x=int(opt("-x", r.get("x", 0))),
                 y=int(opt("-y", r.get("y", 0))))
elif cmd == "-C":
    t = []
else:
    fail("unsupported " + cmd)
with open(path + ".tmp", "w") as f:
    json.dump(t, f)
os.replace(path + ".tmp", path)
'''

FORWARD = {"Masq": "masq", "Route": "gate", "Tunnel": "ipip"}


def need_ldirectord() -> None:
    if not os.path.exists(LDIRECTORD) or shutil.which("perl") is None:
        pytest.skip("needs ldirectord (resource-agents; scripts/system-packages.txt)")


class Hold:
    """Loopback TCP ports chosen by the kernel and held for the test: `up` ones listen (a
    connect check passes), `down` ones are bound without listening (connect is refused)."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []

    def port(self, address: str, up: bool) -> int:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, 0))
        if up:
            s.listen(64)
        self.socks.append(s)
        return s.getsockname()[1]

    def close(self) -> None:
        for s in self.socks:
            s.close()


@dataclass
class Run:
    """One ldirectord run in its own directory."""

    directory: Path
    config: str
    want_checks: int = 1  # checks to see in the debug log before the table is taken
    proc: subprocess.Popen | None = None
    table: list = field(default_factory=list)

    @property
    def out(self) -> str:
        p = self.directory / "ldirectord.out"
        return p.read_text(errors="replace") if p.exists() else ""

    def start(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        fake = d / "ipvsadm"
        fake.write_text(FAKE_IPVSADM.replace("#!PYTHON", f"#!{sys.executable}", 1))
        fake.chmod(0o755)
        # a config name of its own: ldirectord's pid file and its children are per name
        cf = d / f"s8ld-{os.getpid()}-{d.name}.cf"
        cf.write_text(self.config)
        out = open(d / "ldirectord.out", "wb")
        self.proc = subprocess.Popen([LDIRECTORD, "-d", str(cf), "start"], cwd=d, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def checks_done(self) -> int:
        return self.out.count("Checking ")

    def stop(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    def snapshot(self) -> list:
        path = self.directory / "table.json"
        self.table = json.loads(path.read_text()) if path.exists() else []
        return self.table

    def installed(self, vip: str) -> set[tuple[str, int, str]]:
        """(real address:port, weight, method) of the service `vip` in ldirectord's table."""
        for s in self.table:
            if s["vip"] == vip:
                return {(r["rip"], r["w"], FORWARD[r["fwd"]]) for r in s["reals"]}
        return set()


def run_all(runs: list[Run], timeout: float = 40.0) -> None:
    """Start every run, wait until each has started `want_checks` checks (counted in its debug
    log), take its table and stop it."""
    for r in runs:
        r.start()
    deadline = time.monotonic() + timeout
    pending = list(runs)
    try:
        while pending and time.monotonic() < deadline:
            for r in list(pending):
                if r.proc.poll() is not None:
                    raise AssertionError(f"ldirectord exited with {r.proc.returncode}:\n{r.out[-3000:]}")
                if r.checks_done() >= r.want_checks:
                    r.snapshot()
                    pending.remove(r)
            time.sleep(0.1)
        assert not pending, [f"{r.directory.name}: {r.checks_done()} checks\n{r.out[-2000:]}" for r in pending]
    finally:
        for r in runs:
            r.stop()
