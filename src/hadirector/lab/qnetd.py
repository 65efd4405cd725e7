"""A real corosync-qnetd (Debian package `corosync-qnetd`) for the tests and the lab.

    with QnetdServer(workdir, listen="127.0.0.1") as qnetd:     # or host=lab["witness"]
        ... connect to qnetd.listen:qnetd.port ...
        qnetd.clients()      # corosync-qnetd-tool's view: node id -> vote ("ACK", "NACK", ...)
        qnetd.stop()         # SIGTERM by pid, then SIGKILL

It runs in the foreground (-f) with TLS off (-s off) unless told otherwise, with its own lock file,
local socket and NSS directory under `workdir` (-S lock_file=...,local_socket_file=...,
nss_db_dir=...), so it touches nothing of a system qnetd. qnetd refuses port 0, so the port is
picked by the kernel first (bind to port 0 in the same namespace, read it, close) and qnetd is
retried on another one if it lost the race. `heartbeat_interval_min` lowers qnetd's floor
(1000 ms by default, qnet-config.h QNETD_DEFAULT_HEARTBEAT_INTERVAL_MIN) so tests can run fast.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time

from .topology import Host, LabError

QNETD = "corosync-qnetd"
QNETD_TOOL = "corosync-qnetd-tool"


def available() -> bool:
    return shutil.which(QNETD) is not None and shutil.which(QNETD_TOOL) is not None


def _free_port(listen: str, host: Host | None) -> int:
    if host is None:
        with socket.socket(socket.AF_INET6 if ":" in listen else socket.AF_INET) as s:
            s.bind((listen, 0))
            return s.getsockname()[1]
    with host.socket() as s:
        s.bind((listen, 0))
        return s.getsockname()[1]


class QnetdServer:
    def __init__(self, workdir: str, *, listen: str = "127.0.0.1", host: Host | None = None,
                 tls: str = "off", port: int | None = None, heartbeat_interval_min: int = 100,
                 extra_settings: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.listen = listen
        self.host = host
        self.tls = tls
        self.port = port
        self.settings = {"lock_file": os.path.join(workdir, "qnetd.pid"),
                         "local_socket_file": os.path.join(workdir, "qnetd.sock"),
                         "nss_db_dir": os.path.join(workdir, "nssdb"),
                         "heartbeat_interval_min": str(heartbeat_interval_min),
                         **(extra_settings or {})}
        self.log = os.path.join(workdir, "qnetd.log")
        self._popen: subprocess.Popen | None = None
        self._lab_proc = None

    # ------------------------------------------------------------------ life
    def start(self, timeout: float = 10.0) -> "QnetdServer":
        os.makedirs(self.workdir, exist_ok=True)
        for _attempt in range(5):
            port = self.port or _free_port(self.listen, self.host)
            argv = [QNETD, "-f", "-d", "-s", self.tls, "-l", self.listen, "-p", str(port),
                    "-S", ",".join(f"{k}={v}" for k, v in self.settings.items())]
            self._spawn(argv)
            if self._wait_listening(port, timeout):
                self.port = port
                return self
            self.stop()
            if self.port:  # a fixed port that did not come up: no point retrying
                break
        raise LabError(f"corosync-qnetd did not start: {self.output()[-2000:]}")

    def _spawn(self, argv: list[str]) -> None:
        if self.host is not None:
            self._lab_proc = self.host.spawn(argv, name="qnetd")
            self.log = self._lab_proc.log or self.log
            self._popen = self._lab_proc.popen
        else:
            with open(self.log, "ab") as out:
                self._popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True)

    def _wait_listening(self, port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._popen is None or self._popen.poll() is not None:
                return False
            if os.path.exists(self.settings["local_socket_file"]):
                st = self._tool("-s", check=False)
                if st.returncode == 0 and f":{port}" in st.stdout:
                    return True
            time.sleep(0.05)
        return False

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, grace: float = 3.0) -> None:
        """End the qnetd this object started, by its pid (its own session: the group too)."""
        p = self._popen
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for f in ("lock_file", "local_socket_file"):
            try:
                os.unlink(self.settings[f])
            except FileNotFoundError:
                pass

    def output(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "QnetdServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what qnetd says
    def _tool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [QNETD_TOOL, *args, "-p", self.settings["local_socket_file"]]
        if self.host is not None:
            argv = ["ip", "netns", "exec", self.host.netns, *argv]
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        if check and cp.returncode != 0:
            raise LabError(f"{' '.join(argv)}: {cp.stderr.strip()}")
        return cp

    def clients(self) -> dict[int, str]:
        """node id -> the last ACK or NACK qnetd sent that client (or its last other vote, e.g.
        "Wait for reply", when it never sent either), from `corosync-qnetd-tool -l -v`."""
        out = self._tool("-l", "-v").stdout
        votes: dict[int, str] = {}
        node = None
        for line in out.splitlines():
            m = re.match(r"\s*Node ID (\d+):", line)
            if m:
                node = int(m.group(1))
                continue
            m = re.match(r"\s*Vote:\s*(.+?)\s*(?:\((.*)\))?\s*$", line)
            if m and node is not None:  # "No change (NACK)": the last ACK/NACK is in brackets
                votes[node] = m.group(2) or m.group(1)
        return votes
