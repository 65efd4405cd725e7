"""Small helpers shared by the legacy parsers: addresses, suggestions, booleans."""

from __future__ import annotations

import difflib
import ipaddress
import socket

from ..errors import Collector


def where(name: str, lineno: int) -> str:
    return f"{name}:{lineno}"


def suggest(word: str, known: list[str] | set[str] | tuple[str, ...]) -> str:
    """ ' (did you mean "x"?)' for the closest known word, else ''."""
    pool = sorted(known)
    match = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not match:
        lowered = {k.lower(): k for k in pool}
        match = [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)]
    return f' (did you mean "{match[0]}"?)' if match else ""


def resolve_address(token: str, family: int | None, loc: str, col: Collector, what: str) -> str | None:
    """An IP address as written, or a host name resolved now (heartbeat and ldirectord resolve names
    when they read the file; hadirector keeps the address). `family` is socket.AF_INET/AF_INET6 or
    None for either. Reports an error and returns None when it is neither."""
    bare = token[1:-1] if token.startswith("[") and token.endswith("]") else token
    try:
        addr = ipaddress.ip_address(bare)
    except ValueError:
        addr = None
    if addr is not None:
        want = {socket.AF_INET: 4, socket.AF_INET6: 6}.get(family or 0)
        if want and addr.version != want:
            col.error(loc, f"{what}: {token} is not an IPv{want} address")
            return None
        return str(addr)
    if not bare or not all(c.isalnum() or c in "-._" for c in bare):
        col.error(loc, f"{what}: expected an IP address or host name, got {token!r}")
        return None
    try:
        infos = socket.getaddrinfo(bare, None, family or 0, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        col.error(loc, f"{what}: {token!r} is not an IP address and does not resolve to one")
        return None
    resolved = str(ipaddress.ip_address(infos[0][4][0]))
    col.warn(loc, f"{what}: host name {bare} resolved to {resolved} now; the configuration keeps the address")
    return resolved


# heartbeat cl_str_to_boolean (lib/clplumbing/cl_misc.c): the words it takes for true and false
TRUE_WORDS = {"true", "on", "yes", "y", "1"}
FALSE_WORDS = {"false", "off", "no", "n", "0"}


def heartbeat_bool(value: str) -> bool | None:
    v = value.lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    return None
