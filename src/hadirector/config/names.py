"""How an operator names a virtual service and a real server on the command line
(`hadirector real drain VIRTUAL REAL`), and finding them in the configuration. Pure.

A virtual service: ipvsadm's own name (`"TCP 198.18.0.1:80"`, `"FWM 5"`), or `tcp:ADDR:PORT`,
`udp:ADDR:PORT`, `fwm:MARK`, or just `ADDR:PORT` when one protocol has it (IPv6 in brackets:
`[2001:db8::1]:80`). A real server: `ADDR:PORT`, or `ADDR` when the service has one real at that
address.
"""

from __future__ import annotations

import ipaddress
import re

from ..errors import HadirectorError
from .model import Balancer, RealKey, VirtualService

_HOSTPORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[^:\[\]]+)):(?P<port>\d{1,5})$")


class BadName(HadirectorError, ValueError):
    """A name that is not of the expected form, or names nothing in the configuration."""


def _address(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise BadName(f"{what} {text!r}: expected an IPv4 or IPv6 address") from None


def _port(text: str, what: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise BadName(f"{what}: port {port} is not in 1..65535")
    return port


def host_port(text: str, what: str, port_optional: bool = False) -> tuple[str, int | None]:
    """`ADDR:PORT` (IPv6 as `[ADDR]:PORT`), or `ADDR` alone when `port_optional`."""
    m = _HOSTPORT.match(text)
    if m:
        return _address(m["v6"] or m["v4"], what), _port(m["port"], f"{what} {text!r}")
    if port_optional:
        return _address(text.strip("[]"), what), None
    raise BadName(f"{what} {text!r}: expected ADDRESS:PORT ([ADDRESS]:PORT for IPv6)")


def parse_virtual(text: str) -> tuple[str | None, str | None, int | None, int | None]:
    """(protocol or None, address, port, fwmark) of a virtual service's name."""
    t = text.strip()
    m = re.match(r"^(tcp|udp|fwm)(?::|\s+)(.+)$", t, re.IGNORECASE)
    proto, rest = (m[1].lower(), m[2].strip()) if m else (None, t)
    if proto == "fwm" or (proto is None and rest.isdigit()):
        if not rest.isdigit() or int(rest) < 1:
            raise BadName(f"virtual service {text!r}: a firewall mark is a number from 1")
        return "fwm", None, None, int(rest)
    address, port = host_port(rest, "virtual service")
    return proto, address, port, None


def find_virtual(balancer: Balancer | None, text: str) -> VirtualService:
    proto, address, port, fwmark = parse_virtual(text)
    services = balancer.virtual if balancer is not None else ()
    found = [vs for vs in services
             if (fwmark is not None and vs.fwmark == fwmark)
             or (fwmark is None and vs.fwmark is None and vs.address == address and vs.port == port
                 and (proto is None or vs.protocol == proto))]
    if len(found) == 1:
        return found[0]
    names = ", ".join(vs.name for vs in services) or "none"
    if not found:
        raise BadName(f"no virtual service {text!r} in the configuration (there are: {names})")
    raise BadName(f"{text!r} names {', '.join(vs.name for vs in found)}: say which, e.g. "
                     f"tcp:{text}")


def find_real(vs: VirtualService, text: str) -> RealKey:
    address, port = host_port(text, "real server", port_optional=True)
    keys = [vs.real_key(r) for r in vs.reals]
    found = [k for k in keys if k.address == address and (port is None or k.port == port)]
    if len(found) == 1:
        return found[0]
    names = ", ".join(f"{'[' + k.address + ']' if ':' in k.address else k.address}:{k.port}" for k in keys)
    if not found:
        raise BadName(f"{vs.name} has no real server {text!r} (it has: {names or 'none'})")
    raise BadName(f"{vs.name} has several real servers at {address}: give the port ({names})")


def real_text(key: RealKey) -> str:
    """The real's `ADDR:PORT` as the maintenance map keeps it."""
    host = f"[{key.address}]" if ":" in key.address else key.address
    return f"{host}:{key.port}"
