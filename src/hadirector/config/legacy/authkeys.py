"""authkeys: heartbeat's shared keys, read the way heartbeat reads them (heartbeat/auth.c
parse_authfile).

How it works: `auth N` picks the active key; each `N method [key]` line defines key N (0..15) with
method crc, md5 or sha1. As in heartbeat's sscanf("%d%s%s"), the key is the first word after the
method; anything after it is ignored (with a warning here). Heartbeat refuses a key file that group
or others can read, and so does hadirector. crc needs no key and authenticates nothing: accepted
with a loud warning.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..errors import Collector
from ._common import suggest, where

METHODS = ("crc", "md5", "sha1")  # heartbeat's HBauth plugins
MAXAUTH = 16  # heartbeat MAXAUTH: key numbers 0..15

_AUTH = re.compile(r"auth\s*([+-]?\d+)")
_KEY = re.compile(r"([+-]?\d+)\s*(\S+)(?:\s+(\S+))?\s*(.*)$")


def check_mode(path: Path, label: str, col: Collector) -> bool:
    """heartbeat parse_authfile: "Bad permissions on keyfile ..., 600 recommended"."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        col.error(label, f"cannot stat: {exc.strerror}")
        return False
    readers = [who for who, bit in (("group", stat.S_IRGRP), ("others", stat.S_IROTH)) if mode & bit]
    if readers:
        col.error(label, f"readable by {' and '.join(readers)} (mode {stat.S_IMODE(mode):04o}): heartbeat "
                  f"refuses a key file others can read, and so does hadirector; run `chmod 600 {path}`")
        return False
    return True


def parse_authkeys(text: str, name: str, col: Collector, smap) -> dict | None:
    """Return the `cluster.auth` table ({method, key, index}) or None when there is no usable key."""
    active: int | None = None
    active_loc: str | None = None
    keys: dict[int, tuple[str, str, str]] = {}  # index -> (method, key, where)
    broken: set[int] = set()  # key numbers whose line was wrong: no second error naming them
    bad_auth_line = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        loc = where(name, lineno)
        if not line or line.startswith("#"):
            continue
        if line[0] == "a":
            m = _AUTH.match(line)
            if not m:
                col.error(loc, f"invalid auth line {line!r}: expected `auth N`, N the number of a key below")
                bad_auth_line = True
                continue
            if active is not None:
                col.warn(loc, f"auth is set again (first at {active_loc}); the later line wins, as in heartbeat")
            active, active_loc = int(m.group(1)), loc
            continue
        m = _KEY.match(line)
        if not m:
            col.error(loc, f"invalid line {line!r}: expected `auth N` or `N crc|md5|sha1 [key]`")
            continue
        idx, method, key, extra = int(m.group(1)), m.group(2), m.group(3) or "", m.group(4)
        broken.add(idx)
        if not 0 <= idx < MAXAUTH:
            col.error(loc, f"key number {idx} is out of range: heartbeat takes 0..{MAXAUTH - 1}")
            continue
        if method not in METHODS:
            col.error(loc, f"unknown authentication method {method!r}{suggest(method, METHODS)}; "
                      f"authkeys takes {', '.join(METHODS)} (native TOML also takes sha256)")
            continue
        if method == "crc" and key:
            col.error(loc, "crc takes no key (heartbeat: \"Auth method [crc] doesn't use a key\")")
            continue
        if method != "crc" and not key:
            col.error(loc, f"{method} needs a key: `{idx} {method} SECRET`")
            continue
        if extra:
            col.warn(loc, f"only the first word after {method} is the key, as in heartbeat; ignored: {extra}")
        if idx in keys:
            col.warn(loc, f"key {idx} is defined again (first at {keys[idx][2]}); the later line wins")
        keys[idx] = (method, key, loc)
        broken.discard(idx)

    if active is None:
        if bad_auth_line:
            return None
        col.error(name, "no `auth N` line: name the active key, e.g. `auth 1` followed by `1 sha1 SECRET`")
        return None
    if active not in keys:
        if active in broken:
            return None
        defined = ", ".join(str(k) for k in sorted(keys)) or "none"
        col.error(active_loc, f"auth {active} names key {active}, which is not defined (keys defined: {defined})")
        return None
    method, key, key_loc = keys[active]
    if method == "crc":
        col.warn(key_loc, "CRC AUTHENTICATION AUTHENTICATES NOTHING: anyone who can send packets to the "
                 "heartbeat port can forge them; use sha1 (or sha256 in native TOML) with a secret key")
    smap.set(("cluster", "auth"), active_loc)
    smap.set(("cluster", "auth", "index"), active_loc)
    smap.set(("cluster", "auth", "method"), key_loc)
    smap.set(("cluster", "auth", "key"), key_loc)
    return {"method": method, "key": key, "index": active}
