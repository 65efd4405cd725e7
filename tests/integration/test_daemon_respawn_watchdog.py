"""Issue 11 items 4 and 5: `respawn` and `watchdog` acted on by a real `hadirector run`.

One node alone on the loopback interface (no namespace needed). respawn: real shell scripts,
one that exits at once (restarted with a growing pause), one that exits 100 (heartbeat: not
restarted), one that ignores SIGTERM and has a child (its process group is killed at shutdown);
as `nobody` when we are root. watchdog: the device is a FIFO whose reader records every byte
and when it came; the daemon opens, writes and closes it as it would /dev/watchdog (the ioctl
that sets the timeout fails on a FIFO, which the daemon logs and survives, as heartbeat).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from hdtest import pick_port, wait_until

CONFIG = """
[cluster]
name = "solo"
nodes = ["solo"]
{extra}
[cluster.timing]
keepalive = "100ms"
deadtime = "1s"
initdead = "1s"
[cluster.auth]
key = "respawn test"
[[cluster.links]]
kind = "ucast"
interface = "lo"
peers = ["127.0.0.1"]
port = {port}
"""


class Daemon:
    def __init__(self, d: Path, extra: str):
        self.dir = d
        self.cfg = d / "solo.toml"
        self.cfg.write_text(CONFIG.format(extra=extra, port=pick_port("udp")))
        self.state = str(d / "state")
        self.log_path = d / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hadirector", "run", "-c", str(self.cfg), "--node", "solo",
                 "--state-dir", self.state], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict | None:
        p = subprocess.run([sys.executable, "-m", "hadirector", "status", "--json", "--state-dir", self.state],
                           capture_output=True, text=True, timeout=20)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def status_text(self) -> str:
        return subprocess.run([sys.executable, "-m", "hadirector", "status", "--state-dir", self.state],
                              capture_output=True, text=True, timeout=20).stdout

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise


@pytest.fixture
def shared_dir():
    """A directory `nobody` can write (pytest's tmp_path is under a root-only 0700 directory)."""
    d = Path(tempfile.mkdtemp(prefix="hd-respawn-", dir="/tmp"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _script(d: Path, name: str, body: str) -> str:
    p = d / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_respawn(shared_dir):
    d = shared_dir
    user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    flap = _script(d, "flap", f'echo "$(date +%s.%N) $(id -un) $$" >> {d}/flap.log\nsleep 0.2\nexit 1\n')
    done = _script(d, "done", f'echo "$(date +%s.%N)" >> {d}/done.log\nexit 100\n')
    stubborn = _script(d, "stubborn", f"trap '' TERM\nsleep 1000 &\necho \"$$ $!\" > {d}/stubborn.pids\n"
                                      "while :; do sleep 0.1; done\n")
    extra = "\n".join(f'[[cluster.respawn]]\nuser = "{u}"\ncommand = "{c}"' for u, c in
                      ((user, f"{flap} --flag"), (user, done), ("root" if os.geteuid() == 0 else user, stubborn)))
    dm = Daemon(d, extra)
    dm.start()
    try:
        # flap.log: one line per start; restarts come after 1 s, then 2 s (Backoff)
        wait_until(lambda: (d / "flap.log").exists() and len((d / "flap.log").read_text().splitlines()) >= 3,
                   20, 0.1, lambda: f"three starts of flap: {dm.log()[-3000:]}")
        lines = [ln.split() for ln in (d / "flap.log").read_text().splitlines()]
        assert {ln[1] for ln in lines} == {user}, lines  # run as USER
        t = [float(ln[0]) for ln in lines]
        gaps = [b - a for a, b in zip(t, t[1:])]
        assert 1.1 <= gaps[0] <= 2.0 and 2.1 <= gaps[1] <= 3.2, gaps  # 0.2 s run + 1 s, + 2 s pause
        assert len({ln[2] for ln in lines}) == len(lines)  # a new process each time
        # exit 100: started once, never again
        assert len((d / "done.log").read_text().splitlines()) == 1
        wait_until(lambda: (d / "stubborn.pids").exists(), 10, 0.1, "stubborn started")
        leader, child = map(int, (d / "stubborn.pids").read_text().split())
        assert _alive(leader) and _alive(child)
        st = dm.status()
        assert st is not None, dm.log()[-2000:]
        by = {r["command"].split()[0]: r for r in st["respawn"]}
        assert by[flap]["restarts"] >= 2 and by[flap]["last_exit"] == "exit 1", by[flap]
        assert by[done]["state"] == "done" and by[done]["restarts"] == 0 and by[done]["last_exit"] == "exit 100"
        assert by[stubborn]["state"] == "running" and by[stubborn]["pid"] == leader
        text = dm.status_text()
        assert "Respawned processes:" in text and f"{stubborn} (as " in text, text
        assert "exited with 100: not restarted" in dm.log()
    finally:
        t0 = time.monotonic()
        rc = dm.stop()
        took = time.monotonic() - t0
    assert rc == 0, dm.log()[-3000:]
    # SIGTERM to its process group was ignored by the shell: SIGKILL after the grace, the child too
    assert not _alive(leader) and not _alive(child), (leader, child)
    assert "did not stop within 5 s of SIGTERM: SIGKILL" in dm.log()
    assert took < 15, took


class FifoDevice:
    """A stand-in for /dev/watchdog: a FIFO; a thread records (monotonic time, bytes) and EOF."""

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(path)
        self.got: list[tuple[float, bytes]] = []
        self.closed_at: float | None = None
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        with open(self.path, "rb", buffering=0) as f:  # blocks until the daemon opens it
            while True:
                b = f.read(1)
                if not b:
                    self.closed_at = time.monotonic()
                    return
                self.got.append((time.monotonic(), b))

    def feeds(self, after: float = 0.0) -> list[float]:
        return [t for t, b in list(self.got) if b == b"\0" and t > after]


def test_watchdog_fed_while_healthy_disarmed_at_stop(tmp_path):
    dev = FifoDevice(tmp_path / "watchdog")
    dm = Daemon(tmp_path, f'watchdog = "{dev.path}"')
    dm.start()
    try:
        wait_until(lambda: len(dev.feeds()) >= 10, 20, 0.05, lambda: f"ten feeds: {dm.log()[-3000:]}")
        feeds = dev.feeds()
        gaps = [b - a for a, b in zip(feeds, feeds[1:])]
        assert 0.07 <= statistics.median(gaps) <= 0.15, gaps  # every keepalive (100 ms)
        log = dm.log()
        # heartbeat.c hb_init_watchdog_interval: deadtime + 10 ms rounded up: 2 s; a FIFO refuses it
        assert "using it (timeout 2 s, fed every 0.1 s)" in log, log
        assert "WDIOC_SETTIMEOUT to 2 s failed" in log, log
        st = dm.status()
        assert st["watchdog"]["state"] == "armed" and st["watchdog"]["feeds"] >= 10, st["watchdog"]
        assert "watchdog" in dm.status_text()

        # a hung daemon feeds nothing: the gap covers the whole stop, and the late tick is skipped
        os.kill(dm.proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        time.sleep(1.5)
        last_before = max(dev.feeds())
        os.kill(dm.proc.pid, signal.SIGCONT)
        resumed = time.monotonic()
        assert last_before < stopped_at + 0.05, (last_before, stopped_at)
        wait_until(lambda: dev.feeds(resumed), 5, 0.05, "feeding again after SIGCONT")
        assert min(dev.feeds(resumed)) - last_before >= 1.5
        wait_until(lambda: "not fed: the loop ran" in dm.log(), 5, 0.05, lambda: dm.log()[-2000:])
        assert dev.closed_at is None and b"V" not in [b for _, b in dev.got]
    finally:
        rc = dm.stop()
    assert rc == 0, dm.log()[-3000:]
    wait_until(lambda: dev.closed_at is not None, 5, 0.05, "the device closed")
    # the magic close: 'V' is the last byte, then close (heartbeat.c hb_close_watchdog)
    assert dev.got[-1][1] == b"V", dev.got[-3:]
    assert [b for _, b in dev.got].count(b"V") == 1
    assert "disarmed (magic close)" in dm.log()
