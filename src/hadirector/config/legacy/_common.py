"""Small helpers shared by the legacy parsers: lines, addresses, suggestions, numbers, booleans."""

from __future__ import annotations

import difflib
import ipaddress
import re
import socket

from ..errors import Collector


def where(name: str, lineno: int) -> str:
    return f"{name}:{lineno}"


# C0 control characters other than the white space the parsers know, and DEL. heartbeat reads
# lines with fgets() and C string functions, so a NUL silently cuts a line short (a NUL in
# `respawn hacluster /usr/lib\0/heartbeat/ipfail` leaves the command `/usr/lib`); ldirectord's Perl
# keeps it as a character of the value. Neither is what the file's author meant, so such a line is
# an error at its line, and is not read.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def readable_lines(text: str, name: str, col: Collector) -> list[str]:
    """The file's lines; a line holding a NUL or another control character is reported at
    `name:LINE` and replaced by a comment line, so the parsers skip it without ending a block."""
    out = []
    # lines end at \n only, as fgets() and Perl's <FH> read them (str.splitlines would also split
    # at \f, \v, \x1c...); a CR before the \n is dropped (DOS line endings are read as plain lines)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        m = _UNPRINTABLE.search(line)
        if m:
            ch = m.group(0)
            what = "a NUL byte" if ch == "\x00" else f"the control character 0x{ord(ch):02x}"
            col.error(where(name, lineno), f"contains {what} at column {m.start() + 1}; the line is not "
                      "read (remove the character)")
            line = "#"
        out.append(line)
    return out


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


def atoi(text: str) -> int | None:
    """C atoi() as heartbeat uses it: the leading [+-]digits after white space, None when there are
    none (atoi would return 0; callers say what they expected instead)."""
    m = re.match(r"[ \t\n\r\f\v]*([+-]?\d+)", text)
    return int(m.group(1)) if m else None


def heartbeat_msec(text: str) -> int | None:
    """clplumbing cl_get_msec(): `N` or `N.N` seconds, `N ms`, `N us`, rounded to whole ms
    (`499us` is 0). None where heartbeat returns -1 (no number first, or another unit such as
    `2s`: heartbeat knows only ms and us)."""
    s = text.lstrip(" \t\n\r\f")
    m = re.match(r"[0-9.]*", s)
    num = m.group(0)
    if not num:
        return None
    units = s[len(num):].lstrip(" \t\n\r\f")
    if units[:2].lower() == "ms":
        scale = 1.0
    elif units[:2].lower() == "us":
        scale = 0.001
    elif units == "":
        scale = 1000.0
    else:
        return None
    f = re.match(r"\d*\.?\d*", num).group(0)  # atof() reads the longest number it can
    value = float(f) if f not in ("", ".") else 0.0
    return int(value * scale + 0.5)
