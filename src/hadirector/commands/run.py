"""`hadirector run`: the daemon, in the foreground."""

from __future__ import annotations

import asyncio
import os

from ._common import add_config_options, add_state_dir, default_state_dir, load_or_report


def register(sub) -> None:
    p = sub.add_parser("run", help="run the director daemon in the foreground",
                       description="Run this node of the cluster: heartbeat links, resource groups, "
                       "balancer and health checks. Logs to stderr and to the configured log "
                       "file/syslog facility. SIGTERM releases this node's groups, then exits.")
    add_config_options(p)
    add_state_dir(p)
    p.add_argument("--resource-dir", action="append", metavar="DIR",
                   help="where heartbeat resource scripts live, searched in order (default: "
                        "<ha-dir>/resource.d with --ha-dir, then /etc/ha.d/resource.d, /etc/init.d)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    loaded = load_or_report(args, need_node=True)
    if loaded is None:
        return 1
    from ..daemon.logsetup import setup
    from ..daemon.node import Daemon, Options
    from ..resources.base import DEFAULT_RESOURCE_DIRS

    log = setup(loaded.config.cluster.logging, verbose=args.verbose)
    dirs = list(args.resource_dir or [])
    if not dirs:
        if args.ha_dir:
            dirs.append(os.path.join(args.ha_dir, "resource.d"))
        dirs += [d for d in DEFAULT_RESOURCE_DIRS if d not in dirs]
    opts = Options(state_dir=args.state_dir or default_state_dir(), resource_dirs=tuple(dirs))
    from ..daemon.control import ControlError
    from ..net.transports import TransportError
    # The daemon runs on the standard asyncio loop: pyroute2's asyncio netlink sockets do not
    # work on uvloop ("cannot open a UDP handle, invalid family 16").
    try:
        return asyncio.run(Daemon(loaded, opts, log).run())
    except (OSError, ValueError, TransportError, ControlError) as exc:
        log.error("cannot start: %s", exc)
        return 1
