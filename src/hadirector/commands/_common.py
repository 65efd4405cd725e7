"""Options shared by several commands."""

from __future__ import annotations

import argparse
import os
import sys

from ..config import ConfigError, Loaded, load_config
from . import _args


def add_config_options(p: argparse.ArgumentParser, node: bool = True) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-c", "--config", metavar="FILE", type=_args.existing_file,
                     help="native TOML configuration")
    src.add_argument("--ha-dir", metavar="DIR", type=_args.existing_dir,
                     help="legacy directory with ha.cf, authkeys, haresources and optionally ldirectord.cf")
    if node:
        p.add_argument("--node", metavar="NAME", type=_args.node_name,
                       help="this node's name (default: uname -n); must be one of the cluster's nodes")


def add_state_dir(p: argparse.ArgumentParser, client: bool = True) -> None:
    """--state-dir. `client`: the command talks to the running daemon over its control socket
    (tests/unit/test_cli_errors.py runs each such command with no daemon and a stale socket)."""
    p.add_argument("--state-dir", metavar="DIR", default=None, type=_args.dir_path,
                   help="daemon state and control socket (default /run/hadirector as root, "
                        "else $XDG_RUNTIME_DIR/hadirector)")
    p.set_defaults(control_client=client)


def default_state_dir() -> str:
    if os.geteuid() == 0:
        return "/run/hadirector"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/hadirector-{os.getuid()}"
    return os.path.join(base, "hadirector")


def add_resource_dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resource-dir", action="append", metavar="DIR", type=_args.existing_dir,
                   help="where heartbeat resource scripts live, searched in order (default: "
                        "<ha-dir>/resource.d with --ha-dir, then /etc/ha.d/resource.d, /etc/init.d)")


def resource_dirs(args: argparse.Namespace) -> tuple[str, ...]:
    """The resource script directories `run` searches (and `check` looks in): --resource-dir,
    else <ha-dir>/resource.d with --ha-dir, then heartbeat's HA_RESOURCEDIR and INITDIR."""
    from ..resources.base import DEFAULT_RESOURCE_DIRS

    dirs = list(getattr(args, "resource_dir", None) or [])
    if not dirs:
        if getattr(args, "ha_dir", None):
            dirs.append(os.path.join(args.ha_dir, "resource.d"))
        dirs += [d for d in DEFAULT_RESOURCE_DIRS if d not in dirs]
    return tuple(dirs)


def load_or_report(args: argparse.Namespace, need_node: bool) -> Loaded | None:
    """Load the configuration named by -c/--ha-dir; print every problem to stderr.
    Returns None when the configuration has errors."""
    try:
        loaded = load_config(path=args.config, ha_dir=args.ha_dir, node=getattr(args, "node", None),
                             need_node=need_node)
    except ConfigError as exc:
        for p in exc.warnings + exc.problems:
            print(p, file=sys.stderr)
        print(f"hadirector: configuration has {len(exc.problems)} error(s)", file=sys.stderr)
        return None
    for w in loaded.warnings:
        print(w, file=sys.stderr)
    return loaded
