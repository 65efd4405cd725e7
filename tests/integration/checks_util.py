"""Helpers for the health-check tests: free ports, self-signed certificates, processes we start."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from hadirector.config.model import Real, VirtualService


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def vs_for(port: int, real_port: int | None = None, address: str = "127.0.0.1", **kw) -> VirtualService:
    """A virtual service (a TEST-NET-2 VIP that is never contacted) whose one real is on loopback."""
    kw.setdefault("checktimeout", "3s")
    kw.setdefault("negotiatetimeout", "5s")
    return VirtualService(address="198.18.0.100", port=port, reals=[Real(address=address, port=real_port or port)], **kw)


def need(*commands: str) -> None:
    for c in commands:
        if shutil.which(c) is None and not os.path.exists(c):
            pytest.skip(f"needs {c} (scripts/system-packages.txt; `make test` installs it as root)")


def make_cert(tmp, cn: str = "www.example.test") -> tuple[str, str]:
    need("openssl")
    key, crt = str(tmp / "key.pem"), str(tmp / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=DNS:{cn}", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return key, crt


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0, proc: subprocess.Popen | None = None,
              udp: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        if udp:
            out = subprocess.run(["ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True).stdout
            if out.strip():
                return
        else:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


class Proc:
    """A server process we started, ended by its pid (TERM, then KILL)."""

    def __init__(self, argv, **kw) -> None:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
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
