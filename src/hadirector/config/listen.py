"""`ADDR:PORT`: where a server listens ([api] listen, `hadirector run --api`). Pure.

    parse_listen("127.0.0.1:8080")  -> ("127.0.0.1", 8080)
    parse_listen("[::1]:8080")      -> ("::1", 8080)      an IPv6 address in brackets
    parse_listen("0.0.0.0:0")       -> ("0.0.0.0", 0)     port 0: the kernel picks one

An address, not a host name: the daemon binds to it at start, and a name that resolves to
something else later (or not at all at boot) would make `hadirector check` unable to predict it.
"""

from __future__ import annotations

import ipaddress


def parse_listen(text: str) -> tuple[str, int]:
    """(address, port) of `ADDR:PORT`; ValueError saying what is wrong."""
    text = str(text).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected ADDR:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        v6 = True
    else:
        v6 = False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"expected an IP address before the port in {text!r}, got {host!r}") from None
    if addr.version == 6 and not v6:
        raise ValueError(f"write an IPv6 address in brackets, [{host}]:{port}, got {text!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected a port 0..65535 after the address in {text!r}, got {port!r}")
    return str(addr), int(port)


def format_listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
