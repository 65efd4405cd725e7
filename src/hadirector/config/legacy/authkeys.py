"""authkeys: heartbeat's shared keys, read the way heartbeat reads them (heartbeat/auth.c
parse_authfile).

How it works: `auth N` picks the active key; each `N method [key]` line defines key N (0..15) with
method crc, md5 or sha1, and becomes the signing key when N is the number the last `auth` line
above it named (parse_authfile reads top down). As in heartbeat's sscanf("%d%s%s"), the key is the first word after the
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


def parse_authkeys(lines: list[str], name: str, col: Collector, smap) -> dict | None:
    """Return the `cluster.auth` table ({method, key, index}) or None when there is no usable key.

    As in heartbeat's parse_authfile, the file is read top down: a key line becomes the signing
    key when its number is the one the last `auth N` line read named, so `auth N` must come before
    key N, and a later `auth M` with no key M after it leaves the earlier key in place."""
    authnum: int | None = None  # the number named by the last `auth` line read
    auth_loc: str | None = None
    active: tuple[int, str, str, str, str] | None = None  # (index, method, key, key line, auth line)
    keys: dict[int, tuple[str, str, str]] = {}  # index -> (method, key, where)
    broken: set[int] = set()  # key numbers whose line was wrong: no second error naming them
    bad_auth_line = False
    auth_lines: list[tuple[int, str]] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip(" \t\n\r\f")
        loc = where(name, lineno)
        if not line or line.startswith("#"):
            continue
        if line[0] == "a":
            m = _AUTH.match(line)
            if not m:
                col.error(loc, f"invalid auth line {line!r}: expected `auth N`, N the number of a key below")
                bad_auth_line = True
                continue
            authnum, auth_loc = int(m.group(1)), loc
            auth_lines.append((authnum, loc))
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
        if idx == authnum:
            active = (idx, method, key, loc, auth_loc)

    if authnum is None:
        if bad_auth_line:
            return None
        col.error(name, "no `auth N` line: name the active key, e.g. `auth 1` followed by `1 sha1 SECRET`")
        return None
    if active is None:
        if authnum in broken:
            return None
        if authnum in keys:
            col.error(auth_loc, f"auth {authnum} comes after key {authnum} ({keys[authnum][2]}): heartbeat only "
                      f"signs with a key defined below the auth line that names it (\"Auth Key [{authnum}] not "
                      "found\"); put the auth line first")
            return None
        defined = ", ".join(str(k) for k in sorted(keys)) or "none"
        col.error(auth_loc, f"auth {authnum} names key {authnum}, which is not defined (keys defined: {defined})")
        return None
    idx, method, key, key_loc, active_auth_loc = active
    later = [(n, loc) for n, loc in auth_lines if _line(loc) > _line(active_auth_loc)]
    for n, loc in later:
        col.warn(loc, f"auth {n} has no key {n} below it, so heartbeat keeps signing with key {idx} "
                 f"({key_loc}), and so does hadirector")
    earlier = [(n, loc) for n, loc in auth_lines if _line(loc) < _line(active_auth_loc)]
    for n, loc in earlier:
        col.warn(loc, f"auth {n} is replaced by the auth line at {active_auth_loc}; the later line wins, "
                 "as in heartbeat")
    if method == "crc":
        col.warn(key_loc, "CRC AUTHENTICATION AUTHENTICATES NOTHING: anyone who can send packets to the "
                 "heartbeat port can forge them; use sha1 (or sha256 in native TOML) with a secret key")
    smap.set(("cluster", "auth"), active_auth_loc)
    smap.set(("cluster", "auth", "index"), active_auth_loc)
    smap.set(("cluster", "auth", "method"), key_loc)
    smap.set(("cluster", "auth", "key"), key_loc)
    return {"method": method, "key": key, "index": idx}


def _line(loc: str) -> int:
    return int(loc.rsplit(":", 1)[1])
