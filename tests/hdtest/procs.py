"""External programs the tests start (servers, peers): started in their own session, ended by
their pid; started on kernel-picked ports with proof that the listener is theirs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from typing import Callable, Sequence

import pytest

from .ports import bound, port_of
from .wait import wait_until


def need(*commands: str) -> None:
    """Skip (with the reason) unless every named command or path exists."""
    for c in commands:
        if shutil.which(c) is None and not os.path.exists(c):
            pytest.skip(f"needs {c} (scripts/system-packages.txt; `make test` installs it as root)")


def need_root(*commands: str) -> None:
    """Skip (with the reason) unless root and the named commands exist."""
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces / nftables")
    for c in commands:
        if shutil.which(c) is None and not os.path.exists(c):
            pytest.skip(f"needs {c} (installed by `make test` as root)")


class Proc:
    """A program we started, in a session of its own; ended by its pid (TERM, then KILL)."""

    def __init__(self, argv, **kw) -> None:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        self.argv = list(argv)
        self.p = subprocess.Popen(argv, start_new_session=True, **kw)

    def stop(self) -> None:
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)


# ----------------------------------------------------------------------------- who listens where

_TABLES = {"tcp": ("tcp", "tcp6"), "udp": ("udp", "udp6")}
_TCP_LISTEN = "0A"


def _sockets(proto: str, port: int) -> dict[int, str]:
    """inode -> state of our namespace's `proto` sockets bound to local `port` (/proc/net)."""
    out: dict[int, str] = {}
    for table in _TABLES[proto]:
        try:
            with open(f"/proc/net/{table}") as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port and int(cols[9]):
                        out[int(cols[9])] = cols[3]
        except FileNotFoundError:  # no IPv6
            continue
    return out


def _session_inodes(sid: int) -> set[int]:
    """Socket inodes open in any process of session `sid` (the server and its children)."""
    found: set[int] = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getsid(int(pid)) != sid:
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    found.add(int(link[8:-1]))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _protos(kind: str) -> tuple[str, ...]:
    return tuple(kind.split("+"))


def _listening(proc: Proc, port: int, kind: str) -> bool:
    ours = _session_inodes(proc.p.pid)
    for proto in _protos(kind):
        socks = _sockets(proto, port)
        if not any(ino in ours and (proto == "udp" or st == _TCP_LISTEN) for ino, st in socks.items()):
            return False
    return True


def _foreign(proc: Proc, port: int, kind: str) -> bool:
    ours = _session_inodes(proc.p.pid)
    return any(ino not in ours for proto in _protos(kind) for ino in _sockets(proto, port))


def pick_port(kind: str = "tcp", host: str = "127.0.0.1") -> int:
    """A port number the kernel picked for `kind` ("tcp", "udp" or "tcp+udp"). The socket is
    closed again: only for start_server, which proves the listener is the server's."""
    for _ in range(50):
        first = bound(socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM, host)
        try:
            port = port_of(first)
            if kind != "tcp+udp":
                return port
            try:
                second = socket.socket(first.family, socket.SOCK_DGRAM)
                second.bind((host, port))
                second.close()
                return port
            except OSError:
                continue
        finally:
            first.close()
    raise RuntimeError(f"no port free for both TCP and UDP on {host}")


class _Exited(Exception):
    pass


def start_server(start: Callable[..., Proc], kinds: Sequence[str] = ("tcp",), host: str = "127.0.0.1",
                 timeout: float = 20.0, tries: int = 3) -> tuple[Proc, list[int]]:
    """Start an external server that must be told its port numbers (nginx, slapd, dovecot,
    postgres, ...): `start(*ports)` with one kernel-picked port per entry of `kinds` ("tcp",
    "udp", "tcp+udp") returns the Proc. Returns once a socket of the server's own session
    listens on every port: a socket of another process on that number never counts, so a test
    cannot talk to somebody else's server. If another process took a number between the pick and
    the server's bind, the server is stopped and started again on fresh ports (bounded).

    Why not the alternatives: these servers take a number, not a socket (no socket activation in
    slapd, postgres, kamailio, freeradius); SO_REUSEPORT holding works for nginx/dovecot TCP only
    and would steal UDP datagrams; a network namespace of their own would make these unprivileged
    tests root-only and move the checker into the namespace too."""
    last = ""
    for _ in range(tries):
        ports = [pick_port(k, host) for k in kinds]
        proc = start(*ports)
        ok = False
        try:
            def up() -> bool:
                if proc.p.poll() is not None:
                    raise _Exited(f"exited with {proc.p.returncode}")
                return all(_listening(proc, p, k) for p, k in zip(ports, kinds))
            try:
                wait_until(up, timeout, 0.05, f"{proc.argv[0]} to listen on {host} {ports}")
                ok = True
                return proc, ports
            except (_Exited, AssertionError) as e:
                taken = [p for p, k in zip(ports, kinds) if _foreign(proc, p, k)]
                if not taken:
                    raise RuntimeError(f"{proc.argv[0]} did not come up on {host} {ports}: {e}") from None
                last = f"ports {taken} were taken by another process ({e})"
        finally:
            if not ok:
                proc.stop()
    raise RuntimeError(f"{start!r}: no free ports after {tries} tries; last: {last}")
