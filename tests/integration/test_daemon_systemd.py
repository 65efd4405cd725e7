"""Issue 13 item 1: the daemon speaks systemd's notification protocol (Type=notify, WatchdogSec).

Two real `hadirector run` processes share the loopback interface (ucast with `source`, as the
demo does; no root needed), each given NOTIFY_SOCKET and WATCHDOG_USEC the way systemd gives
them: a real AF_UNIX datagram socket we read, one bound to a path, the other in the abstract
namespace. A `script` resource group `lb` prefers alpha.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

import pytest

from hdtest import pick_port, wait_until

WATCHDOG_USEC = 600_000  # pings every 0.3 s
SCRIPT = """#!/bin/sh
case "$1" in
start) env > {d}/env; touch {d}/running ;;
stop) rm -f {d}/running ;;
status) if [ -e {d}/running ]; then echo running; else echo stopped; fi ;;
esac
exit 0
"""
CONFIG = """
[cluster]
name = "sd"
nodes = ["alpha", "beta"]
auto_failback = "off"
[cluster.timing]
keepalive = "100ms"
deadtime = "2s"
initdead = "2s"
[cluster.auth]
key = "notify test"
[[cluster.links]]
kind = "ucast"
interface = "lo"
peers = ["127.0.0.1", "127.0.0.2"]
source = "{source}"
port = {port}
[[groups]]
name = "lb"
preferred_node = "alpha"
[[groups.resources]]
kind = "script"
name = "marker"
"""
SOURCES = {"alpha": "127.0.0.1", "beta": "127.0.0.2"}


class Notifications:
    """Reads what a daemon sends to its NOTIFY_SOCKET: (monotonic time, {key: value})."""

    def __init__(self, tmp, abstract: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            self.name = f"@hadirector-test-{uuid.uuid4().hex}"
            self.sock.bind(b"\0" + self.name[1:].encode())
        else:
            self.name = str(tmp / "notify.sock")
            self.sock.bind(self.name)
        self.sock.settimeout(0.2)
        self.got: list[tuple[float, dict[str, str]]] = []
        self._stop = False
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, OSError):
                continue
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.got.append((time.monotonic(), fields))

    def close(self) -> None:
        self._stop = True
        self._t.join(2)
        self.sock.close()

    def values(self, key: str) -> list[str]:
        return [f[key] for _, f in list(self.got) if key in f]

    def pings(self, after: float = 0.0) -> list[float]:
        return [t for t, f in list(self.got) if f.get("WATCHDOG") == "1" and t > after]


class Node:
    def __init__(self, tmp, name: str, port: int, abstract: bool) -> None:
        self.name = name
        self.dir = tmp / name
        (self.dir / "resource.d").mkdir(parents=True)
        script = self.dir / "resource.d" / "marker"
        script.write_text(SCRIPT.format(d=self.dir))
        script.chmod(0o755)
        self.cfg = self.dir / "cluster.toml"
        self.cfg.write_text(CONFIG.format(source=SOURCES[name], port=port))
        self.notify = Notifications(self.dir, abstract)
        self.log_path = self.dir / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.name, WATCHDOG_USEC=str(WATCHDOG_USEC))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hadirector", "run", "-c", str(self.cfg), "--node", self.name,
                 "--state-dir", str(self.dir / "state"), "--resource-dir", str(self.dir / "resource.d")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status_is(self, want: str) -> bool:
        return want in self.notify.values("STATUS")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.notify.close()


@pytest.fixture
def pair(tmp_path):
    port = pick_port("udp")
    nodes = {"alpha": Node(tmp_path, "alpha", port, abstract=False),
             "beta": Node(tmp_path, "beta", port, abstract=True)}
    try:
        yield nodes
    finally:
        for n in nodes.values():
            n.stop()


def test_ready_status_watchdog_stopping(pair):
    alpha, beta = pair["alpha"], pair["beta"]
    alpha.start()
    beta.start()
    logs = lambda: f"alpha:\n{alpha.log()}\nbeta:\n{beta.log()}"  # noqa: E731

    # READY=1 once the core runs with its links open, with the first STATUS in the same datagram
    for n in (alpha, beta):
        wait_until(lambda n=n: n.notify.values("READY"), 20, 0.05, f"READY=1 from {n.name}: {logs()}")
        first = n.notify.got[0][1]
        assert first.get("READY") == "1" and first["STATUS"], n.notify.got[:3]
    # STATUS follows what the node holds
    wait_until(lambda: alpha.status_is("active, holding lb"), 20, 0.05,
               lambda: f"alpha holding lb; statuses {alpha.notify.values('STATUS')}")
    wait_until(lambda: beta.status_is("backup (lb held by alpha)"), 20, 0.05,
               lambda: f"beta as backup; statuses {beta.notify.values('STATUS')}")
    assert alpha.notify.values("STATUS")[0].startswith("starting"), alpha.notify.values("STATUS")
    # the resource script ran without systemd's variables (NotifyAccess=main would drop its
    # messages; they must not reach it at all)
    env = (alpha.dir / "env").read_text()
    assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env and "PATH=" in env

    # WATCHDOG=1 every half of WATCHDOG_USEC
    t0 = time.monotonic()
    wait_until(lambda: len(beta.notify.pings(t0)) >= 6, 10, 0.05, "six watchdog pings from beta")
    gaps = [b - a for a, b in zip(beta.notify.pings(t0), beta.notify.pings(t0)[1:])]
    assert 0.2 <= statistics.median(gaps) <= 0.45, gaps

    # a stopped loop sends none; on waking up late it does not claim to be alive at once
    os.kill(beta.proc.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    time.sleep(1.2)
    last_before = max(beta.notify.pings())
    os.kill(beta.proc.pid, signal.SIGCONT)
    wait_until(lambda: beta.notify.pings(stopped_at + 1.2), 5, 0.05, "watchdog pings again after SIGCONT")
    first_after = min(beta.notify.pings(stopped_at + 1.2))
    assert first_after - last_before >= 1.2, (last_before, first_after)
    wait_until(lambda: "watchdog: not telling systemd we are alive" in beta.log(), 5, 0.05,
               lambda: f"the late-loop warning in beta's log: {beta.log()}")

    # SIGTERM: STOPPING=1 with the time the ordered release may take, then the status says so
    alpha.proc.terminate()
    wait_until(lambda: alpha.notify.values("STOPPING"), 10, 0.05, "STOPPING=1 from alpha")
    stopping = next(f for _, f in alpha.notify.got if "STOPPING" in f)
    assert int(stopping["EXTEND_TIMEOUT_USEC"]) >= 10_000_000, stopping
    assert alpha.proc.wait(20) == 0, logs()
    assert any(s.startswith("leaving") for s in alpha.notify.values("STATUS")), alpha.notify.values("STATUS")
    wait_until(lambda: beta.status_is("active, holding lb"), 20, 0.05,
               lambda: f"beta takes lb over; statuses {beta.notify.values('STATUS')}")
