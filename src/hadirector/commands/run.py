"""`hadirector run`: the daemon, in the foreground."""

from __future__ import annotations

import asyncio

from ._common import (add_config_options, add_resource_dirs, add_state_dir, default_state_dir, load_or_report,
                      resource_dirs)


def register(sub) -> None:
    p = sub.add_parser("run", help="run the director daemon in the foreground",
                       description="Run this node of the cluster: heartbeat links, resource groups, "
                       "balancer and health checks. Logs to stderr and to the configured log "
                       "file/syslog facility. SIGTERM releases this node's groups, then exits.")
    add_config_options(p)
    add_state_dir(p)
    add_resource_dirs(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    loaded = load_or_report(args, need_node=True)
    if loaded is None:
        return 1
    from ..daemon.logsetup import setup
    from ..daemon.node import Daemon, Options

    log = setup(loaded.config.cluster.logging, verbose=args.verbose)
    opts = Options(state_dir=args.state_dir or default_state_dir(), resource_dirs=resource_dirs(args))
    from ..daemon.control import ControlError
    from ..net.transports import TransportError
    # The daemon runs on the standard asyncio loop: pyroute2's asyncio netlink sockets do not
    # work on uvloop ("cannot open a UDP handle, invalid family 16").
    try:
        return asyncio.run(Daemon(loaded, opts, log).run())
    except (OSError, ValueError, TransportError, ControlError) as exc:
        log.error("cannot start: %s", exc)
        return 1
