"""Legacy import: the heartbeat (ha.cf, authkeys, haresources) and ldirectord.cf files as users have
them. `read_ha_dir` returns plain data in the shape of `model.Config` plus a `locate` function that
maps a key path back to `file:line`.

How it works: each file kind has its own module (hacf, authkeys, haresources, ldirectord) that
turns text into plain data, reports every problem to the collector as `file:line` and keeps going
after an error, and records in a `SourceMap` which line each value came from. Validation proper is
left to `build.build_config` (the model); its key-path errors come back through `locate`, which
finds the longest recorded prefix of the path, so a rule broken in the model still lands on the
line that set the value.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..build import KeyPath, Locate
from ..errors import Collector
from . import authkeys, hacf, haresources, ldirectord
from ._common import readable_lines

__all__ = ["SourceMap", "read_ha_dir"]

# The directory heartbeat and ldirectord read their files from. A path under it inside
# haresources (`ldirectord::/etc/ha.d/ldirectord.cf`) is taken relative to the directory given.
HA_D = "/etc/ha.d"


class SourceMap:
    """Where each value came from: key path -> "file:line". `locate` answers with the longest
    recorded prefix of a path, else the file the top-level section is read from."""

    def __init__(self, default: str = "") -> None:
        self._where: dict[KeyPath, str] = {}
        self.default = default

    def set(self, path: KeyPath, where: str) -> None:
        self._where[tuple(path)] = where

    def setdefault(self, path: KeyPath, where: str) -> None:
        self._where.setdefault(tuple(path), where)

    def get(self, path: KeyPath) -> str | None:
        return self._where.get(tuple(path))

    def locate(self, path: KeyPath) -> str:
        path = tuple(path)
        for n in range(len(path), 0, -1):
            where = self._where.get(path[:n])
            if where is not None:
                return where
        return self.default


def _label(path: Path) -> str:
    """How a file is named in messages: as the user would type it."""
    return str(path)


def _read_lines(path: Path, label: str, col: Collector) -> list[str] | None:
    """The file's lines, None when it cannot be read (missing: the caller says what it is for).
    A line with a NUL or another control character is reported here and not read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        col.error(label, f"cannot read: {exc.strerror}")
        return None
    # heartbeat and ldirectord read bytes; the files are ASCII in practice, keys may not be
    return readable_lines(data.decode("utf-8", errors="surrogateescape"), label, col)


def _resolve_ldirectord_file(ha_dir: Path, name: str) -> Path:
    """ldirectord looks for a relative config name in /etc/ha.d (ldirectord ld_init); we look in
    the directory given, and read /etc/ha.d/... paths from there too."""
    if name.startswith(HA_D + "/"):
        return ha_dir / name[len(HA_D) + 1:]
    p = Path(name)
    return p if p.is_absolute() else ha_dir / p


def read_ha_dir(ha_dir: Path, collector: Collector,
                local_node: str | None = None) -> tuple[dict | None, Locate, tuple[str, ...]]:
    """Read ha.cf, authkeys, haresources and (when present or named in haresources) ldirectord.cf
    from `ha_dir`. Returns (data in the shape of Config or None, locate, files read).
    `local_node` is this node's name (--node, else `uname -n`), which ha.cf's `autojoin any` adds
    to the nodes as heartbeat does."""
    col = collector
    ha_dir = Path(ha_dir)
    smap = SourceMap(_label(ha_dir))
    files: list[str] = []
    if not ha_dir.is_dir():
        col.error(_label(ha_dir), "not a directory (expected the heartbeat directory holding ha.cf, "
                  "authkeys, haresources and optionally ldirectord.cf)")
        return None, smap.locate, ()

    usable = True

    # ---- ha.cf
    hacf_path = ha_dir / "ha.cf"
    hacf_label = _label(hacf_path)
    smap.set(("cluster",), hacf_label)
    text = _read_lines(hacf_path, hacf_label, col)
    cluster: dict = {}
    if text is None:
        if not hacf_path.exists():
            col.error(hacf_label, "missing: heartbeat's main configuration file is required")
        usable = False
    else:
        files.append(str(hacf_path))
        cluster = hacf.parse_hacf(text, hacf_label, col, smap,
                                  local_node if local_node is not None else os.uname().nodename)

    # ---- authkeys
    ak_path = ha_dir / "authkeys"
    ak_label = _label(ak_path)
    smap.set(("cluster", "auth"), ak_label)
    text = _read_lines(ak_path, ak_label, col)
    if text is None:
        if not ak_path.exists():
            col.error(ak_label, "missing: the authkeys file is required (heartbeat will not start without it)")
        usable = False
    else:
        files.append(str(ak_path))
        if not authkeys.check_mode(ak_path, ak_label, col):
            usable = False
        auth = authkeys.parse_authkeys(text, ak_label, col, smap)
        if auth is None:
            usable = False
        else:
            cluster["auth"] = auth

    # ---- haresources
    hr_path = ha_dir / "haresources"
    hr_label = _label(hr_path)
    smap.set(("groups",), hr_label)
    text = _read_lines(hr_path, hr_label, col)
    groups: list[dict] = []
    balancer_refs: list[tuple[str, str]] = []  # (file named by ldirectord::file or "", where)
    if text is None:
        if not hr_path.exists():
            col.error(hr_label, "missing: the haresources file is required (an empty file means no "
                      "resource groups)")
        usable = False
    else:
        files.append(str(hr_path))
        groups, balancer_refs = haresources.parse_haresources(
            text, hr_label, col, smap, cluster.get("nodes", []))

    # ---- ldirectord.cf: the one haresources names, else ./ldirectord.cf when present
    balancer: dict | None = None
    named = {ref for ref, _ in balancer_refs if ref}
    if len(named) > 1:
        for ref, where in balancer_refs:
            if ref:
                col.error(where, f"ldirectord::{ref}: hadirector runs one balancer, but haresources "
                          f"names {len(named)} ldirectord configuration files ({', '.join(sorted(named))})")
    ld_name = next(iter(named)) if named else "ldirectord.cf"
    ld_path = _resolve_ldirectord_file(ha_dir, ld_name)
    ld_label = _label(ld_path)
    smap.set(("balancer",), ld_label)
    text = _read_lines(ld_path, ld_label, col)
    if text is not None:
        files.append(str(ld_path))
        balancer = ldirectord.parse_ldirectord(text, ld_label, col, smap)
        if not balancer_refs:
            col.warn(ld_label, "read, but no haresources group starts ldirectord: the balancer is "
                     "configured yet no resource group runs it")
    elif balancer_refs:
        for _ref, where in balancer_refs:
            col.error(where, f"ldirectord needs its configuration file, but {ld_label} does not exist")
        usable = False
    for g in groups:
        for r in g["resources"]:
            if r.get("kind") == "balancer":
                r["source"] = os.path.abspath(ld_path)

    data: dict = {"cluster": cluster, "groups": groups}
    if balancer is not None:
        data["balancer"] = balancer
    if not _all_text(data, (), smap.locate, col):
        usable = False
    if not usable:
        return None, smap.locate, tuple(files)
    return data, smap.locate, tuple(files)


def _all_text(value, path: KeyPath, locate: Locate, col: Collector) -> bool:
    """The files are read as bytes (non-UTF-8 comments are fine); a value that is not UTF-8 text
    cannot be kept (nor written to TOML), so it is an error at its line."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # the value is not echoed: it may be a key
            col.error(locate(path), f"the value of {'.'.join(map(str, path))} is not UTF-8 text; hadirector "
                      "keeps names, paths and keys as UTF-8 (plain ASCII is safest)")
            return False
        return True
    if isinstance(value, dict):
        return all([_all_text(v, (*path, k), locate, col) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return all([_all_text(v, (*path, i), locate, col) for i, v in enumerate(value)])
    return True

