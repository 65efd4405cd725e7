"""Helpers for the health-check tests: a virtual service around one real, self-signed certificates.
Ports, processes and skips are in hdtest."""

from __future__ import annotations

import subprocess

from hadirector.config.model import Real, VirtualService
from hdtest import need


def vs_for(port: int, real_port: int | None = None, address: str = "127.0.0.1", **kw) -> VirtualService:
    """A virtual service (a TEST-NET-2 VIP that is never contacted) whose one real is on loopback."""
    kw.setdefault("checktimeout", "3s")
    kw.setdefault("negotiatetimeout", "5s")
    return VirtualService(address="198.18.0.100", port=port, reals=[Real(address=address, port=real_port or port)], **kw)


def make_cert(tmp, cn: str = "www.example.test") -> tuple[str, str]:
    need("openssl")
    key, crt = str(tmp / "key.pem"), str(tmp / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=DNS:{cn}", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return key, crt
