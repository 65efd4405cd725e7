"""One daemon per node (issue 13 item 4): the state directory is locked for the daemon's life, a
second `run` exits at once naming the first's pid, no second process can take the heartbeat port
(so it cannot steal the datagrams and make the peer declare us dead), and kill -9 leaves nothing a
restart cannot recover.

Found in issue 13: a second `hadirector run` for the same node started beside the first
(SO_REUSEADDR), took its heartbeats, made the peer declare it dead and needed 6.5 minutes to stop.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import time

import pytest

from daemon_util import DEADTIME, ctl, declared_dead, no_double_holder, pair_cluster, pid_file, run_argv
from hdtest import wait_until

PORT = 694  # write_ha_dir's udpport


def _second_run(c, node: str, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    r = c.hosts[node].run(run_argv(c, node, *extra), check=False, timeout=30)
    return r, time.monotonic() - t0


def _thief(host, addr: str, dev: str | None) -> tuple[socket.socket | None, int]:
    """A socket in `host`'s namespace set up to share a port: SO_REUSEADDR and SO_REUSEPORT (as a
    second daemon of the old code would, or any root process), bound to `dev`. Returns (socket,
    0) when the bind worked, (None, errno) when the kernel refused it."""
    s = host.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if dev:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    try:
        s.bind((addr, PORT))
    except OSError as e:
        s.close()
        return None, e.errno
    s.setblocking(False)
    return s, 0


def test_the_thief_takes_datagrams_from_a_socket_with_reuseaddr(lab, tmp_path):
    """The fault the next test guards against, shown to take effect: against a receiver that
    sets SO_REUSEADDR (as the heartbeat sockets did), the thief binds and the unicast
    datagrams of the peer go to the thief."""
    c = pair_cluster(lab, tmp_path)
    a, b = c.hosts["dir-a"], c.hosts["dir-b"]
    victim = a.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    victim.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    victim.bind(("0.0.0.0", PORT))
    victim.setblocking(False)
    thief, err = _thief(a, "0.0.0.0", "eth0")
    assert thief is not None, f"the thief could not bind ({os.strerror(err)})"
    sender = b.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(20):
        sender.sendto(b"heartbeat %d" % i, (c.pair.addr["dir-a"], PORT))
    time.sleep(0.2)

    def drain(s):
        n = 0
        while True:
            try:
                s.recv(100)
                n += 1
            except BlockingIOError:
                return n
    stolen, kept = drain(thief), drain(victim)
    for s in (victim, thief, sender):
        s.close()
    assert stolen > 0 and stolen + kept == 20, (stolen, kept)


def test_second_run_refused_port_kept_lock_recovered_after_kill9(lab, tmp_path):
    c = pair_cluster(lab, tmp_path)
    first = c.start("dir-a")
    c.start("dir-b")
    c.wait_holder("dir-a", timeout=15, stable=0.3)
    wait_until(lambda: ctl(c, "dir-b", "status").stdout.count("active") >= 2, 10, 0.1,
               "dir-b to see dir-a active")
    c.start_sampling()
    try:
        # a second run with the same state directory: refused at once, naming the first's pid
        r, took = _second_run(c, "dir-a")
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"already running (pid {first.pid})" in r.stderr, r.stderr
        assert took < 10, f"the second run took {took:.1f}s to give up"
        with open(pid_file(c, "dir-a")) as f:
            assert f.read().strip() == str(first.pid)
        # a second run with another state directory passes the lock but not the heartbeat port
        r, took = _second_run(c, "dir-a", "--state-dir", str(tmp_path / "other-state"))
        assert r.returncode == 1, r.stdout + r.stderr
        assert "Address already in use" in r.stderr and f"port {PORT}" in r.stderr, r.stderr
        assert took < 10, f"the second run took {took:.1f}s to give up"
        # nobody else can bind the heartbeat port, however it asks
        a = c.hosts["dir-a"]
        for addr, dev in (("0.0.0.0", "eth0"), ("0.0.0.0", None), (c.pair.addr["dir-a"], "eth0"),
                          (c.pair.addr["dir-a"], None), ("0.0.0.0", "eth1")):
            s, err = _thief(a, addr, dev)
            if s is not None:
                s.close()
            assert err == errno.EADDRINUSE, f"a thief bound {addr}:{PORT} on {dev or 'any device'}"
        time.sleep(3 * DEADTIME / 1000)  # a few deadtimes with the second runs and thieves gone
        assert first.alive(), c.log("dir-a")[-2000:]
        assert not declared_dead(c.log("dir-b"), "dir-a"), c.log("dir-b")[-3000:]
        assert c.holders() == ("dir-a",)
    finally:
        samples = c.stop_sampling()
    no_double_holder(samples)
    assert {s.holders for s in samples} == {("dir-a",)}

    # kill -9 (with the links cut, so the peer takes over): the kernel drops the lock; the pid
    # file and the control socket stay behind, and a restart recovers both at once
    c.power_off("dir-a")
    assert os.path.exists(os.path.join(c.state_dir("dir-a"), "control.sock"))
    again = c.start("dir-a")
    wait_until(lambda: ctl(c, "dir-a", "status").returncode == 0, 15, 0.1,
               lambda: "the restarted daemon to answer\n" + c.log("dir-a")[-2000:])
    with open(pid_file(c, "dir-a")) as f:
        assert f.read().strip() == str(again.pid)
    r, _ = _second_run(c, "dir-a")
    assert r.returncode == 1 and f"already running (pid {again.pid})" in r.stderr, r.stderr
    c.power_on_links("dir-a")
    c.wait_holder("dir-a", timeout=15, stable=0.3)  # auto_failback on: back to the preferred node
