"""The daemon with its balancer and health checks, on loopback without root: a one-node cluster
whose group holds the balancer (userspace proxy), real HTTP servers as reals.

Issue 5 item 7: a stopped real leaves the data plane within checkinterval x failurecount +
checktimeout and returns when started; a reload that changes one service leaves the other's open
connections and counters untouched. Issue 4 item 5: `hadirector lvs` shows the running balancer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from daemon_util import Procs, listening as _listening
from hdtest import wait_until

HB_PORT = 16950
A_VIP, B_VIP, VPORT, RPORT = "127.0.0.120", "127.0.0.121", 18280, 18281
A_REALS = ["127.0.0.21", "127.0.0.22"]
B_REALS = ["127.0.0.31"]
INTERVAL_MS, FAILURECOUNT, TIMEOUT_MS = 500, 2, 500


def _config(a_scheduler: str, notify: str = "") -> str:
    reals_a = "".join(f'\n[[balancer.virtual.reals]]\naddress = "{a}"\nport = {RPORT}\nmethod = "masq"\n'
                      for a in A_REALS)
    reals_b = "".join(f'\n[[balancer.virtual.reals]]\naddress = "{a}"\nport = {RPORT}\nmethod = "masq"\n'
                      for a in B_REALS)
    return f"""
[cluster]
nodes = ["solo"]
[cluster.timing]
keepalive = "100ms"
deadtime = "500ms"
initdead = "500ms"
[cluster.auth]
key = "test"
[[cluster.links]]
kind = "ucast"
interface = "lo"
peers = ["127.0.0.1"]
port = {HB_PORT}
[[groups]]
name = "lb"
preferred_node = "solo"
{f'notify = "{notify}"' if notify else ""}
[[groups.resources]]
kind = "balancer"
[balancer]
dataplane = "proxy"
checkinterval = "{INTERVAL_MS}ms"
checktimeout = "{TIMEOUT_MS}ms"
failurecount = {FAILURECOUNT}
[[balancer.virtual]]
address = "{A_VIP}"
port = {VPORT}
scheduler = "{a_scheduler}"
checktype = "connect"
{reals_a}
[[balancer.virtual]]
address = "{B_VIP}"
port = {VPORT}
scheduler = "wrr"
checktype = "connect"
{reals_b}
"""


def _ctl(state, *args):
    r = subprocess.run([sys.executable, "-m", "hadirector", *args, "--state-dir", state],
                       capture_output=True, text=True, timeout=30)
    return r


@pytest.fixture
def env(tmp_path):
    p = Procs(str(tmp_path))
    try:
        for i, addr in enumerate(A_REALS + B_REALS):
            p.start(f"real{i}", [sys.executable, "-m", "hadirector.lab.httpd", "--port", str(RPORT),
                                 "--bind", addr, "--identity", addr])
        for addr in A_REALS + B_REALS:
            wait_until(lambda a=addr: _listening(a, RPORT), 10, 0.05, f"real {addr}")
        cfg = tmp_path / "solo.toml"
        notify = tmp_path / "notify.sh"
        notify.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'notify.log'}\n")
        notify.chmod(0o755)
        cfg.write_text(_config("wrr", str(notify)))
        state = str(tmp_path / "state")
        p.start("daemon", [sys.executable, "-m", "hadirector", "run", "-c", str(cfg), "--node", "solo",
                           "--state-dir", state])
        wait_until(lambda: _listening(A_VIP, VPORT) and _listening(B_VIP, VPORT), 15, 0.05, "the virtual services")
        yield p, cfg, state
    finally:
        p.close()


def _lvs_reals(state) -> list[str]:
    r = _ctl(state, "lvs", "-n")
    assert r.returncode == 0, r.stderr
    return [line.split()[1] for line in r.stdout.splitlines() if line.strip().startswith("->")
            and "RemoteAddress" not in line]


def test_real_leaves_and_returns_within_bound(env):
    p, cfg, state = env
    # the group's notify command ran as keepalived's does: GROUP <name> MASTER <priority>
    log = cfg.parent / "notify.log"
    wait_until(log.exists, 10, 0.05, "the notify command")
    assert log.read_text().split()[:3] == ["GROUP", "lb", "MASTER"]
    assert sorted(_lvs_reals(state)) == sorted(f"{a}:{RPORT}" for a in A_REALS + B_REALS)
    bound = (INTERVAL_MS * FAILURECOUNT + TIMEOUT_MS) / 1000
    t0 = time.monotonic()
    p.stop("real1")  # 127.0.0.22
    wait_until(lambda: f"{A_REALS[1]}:{RPORT}" not in _lvs_reals(state), 10, 0.05, "the stopped real to leave")
    took = time.monotonic() - t0
    # the check schedule allows up to one interval of phase before the first failing check
    assert took <= bound + INTERVAL_MS / 1000 + 1.0, f"left after {took:.2f}s, bound {bound:.2f}s"
    # lvs --checks and --json show the check state, last result, last change and reason
    text = _ctl(state, "lvs", "-n", "--checks").stdout
    line = [l for l in text.splitlines() if l.startswith("TCP") and A_REALS[1] in l and "down" in l]
    assert line and "failed" in line[0] and "refused" in line[0].lower(), text
    lj = json.loads(_ctl(state, "lvs", "--json").stdout)
    assert any(c["address"] == A_REALS[1] and c["state"] == "down" for c in lj["checks"]), lj["checks"]
    up = [r["check"] for s in lj["services"] for r in s["reals"] if r["address"] == A_REALS[0]]
    assert up and up[0]["state"] == "up" and up[0]["last_result"] == "ok", up
    st = json.loads(_ctl(state, "status", "--json").stdout)
    down = [c for c in st["checks"].values() if c["address"] == A_REALS[1]]
    assert down and down[0]["state"] == "down" and down[0]["reason"], down
    assert down[0]["last_change"] and down[0]["last_result"] == "failed"
    # every request now goes to the remaining real
    for _ in range(20):
        with socket.create_connection((A_VIP, VPORT), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert A_REALS[0].encode() in s.makefile("rb").read()
    p.start("real1", [sys.executable, "-m", "hadirector.lab.httpd", "--port", str(RPORT),
                      "--bind", A_REALS[1], "--identity", A_REALS[1]])
    wait_until(lambda: f"{A_REALS[1]}:{RPORT}" in _lvs_reals(state), 10, 0.05, "the real to return")
    del t0


def test_reload_changes_one_service_leaves_the_other_alone(env):
    p, cfg, state = env
    # a keep-alive connection through service B, used before and after the reload
    conn = socket.create_connection((B_VIP, VPORT), timeout=3)
    f = conn.makefile("rb")

    def request() -> bytes:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.read(1)
        length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
        return f.read(length)

    assert B_REALS[0].encode() in request()
    before = json.loads(_ctl(state, "lvs", "--json", "--stats").stdout)
    # change only service A's scheduler, then SIGHUP the daemon
    cfg.write_text(_config("rr", str(cfg.parent / "notify.sh")))
    os.kill(p.procs["daemon"].pid, signal.SIGHUP)
    wait_until(lambda: " rr" in _ctl(state, "lvs", "-n").stdout, 10, 0.05, "service A to show scheduler rr")
    assert f"reload (SIGHUP): virtual TCP {A_VIP}:{VPORT}: scheduler wrr -> rr" in p.log("daemon")
    # the open connection through B still works, on the same socket
    assert B_REALS[0].encode() in request()
    after = json.loads(_ctl(state, "lvs", "--json", "--stats").stdout)
    conn.close()

    # B's counters were not reset by the reload (they only grow)
    sb, sa = _service_stats(before, B_VIP), _service_stats(after, B_VIP)
    assert sa["conns"] >= sb["conns"] >= 1, (sb, sa)
    assert sa["inpkts"] >= sb["inpkts"] and sa["outbytes"] > sb["outbytes"], (sb, sa)
    # and service A really changed
    assert _service(after, A_VIP)["scheduler"] == "rr" and _service(before, A_VIP)["scheduler"] == "wrr"


def _service(snap: dict, vip: str) -> dict:
    for svc in snap["services"]:
        if svc["address"] == vip:
            return svc
    raise AssertionError(f"no service {vip} in {json.dumps(snap)[:500]}")


def _service_stats(snap: dict, vip: str) -> dict:
    return _service(snap, vip)["stats"]
