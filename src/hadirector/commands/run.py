"""`hadirector run`: the daemon, in the foreground."""

from __future__ import annotations

import asyncio
import faulthandler

from . import _args
from ._common import (add_config_options, add_resource_dirs, add_state_dir, default_state_dir, load_or_report,
                      resource_dirs)


def register(sub) -> None:
    p = sub.add_parser("run", help="run the director daemon in the foreground",
                       description="Run this node of the cluster: heartbeat links, resource groups, "
                       "balancer and health checks. Logs to stderr and to the configured log "
                       "file/syslog facility. SIGTERM releases this node's groups, then exits. "
                       "Under systemd (Type=notify) it reports READY, STATUS, WATCHDOG and STOPPING.")
    add_config_options(p)
    add_state_dir(p, client=False)
    p.add_argument("--lib-dir", metavar="DIR", type=_args.dir_path, default=None,
                   help="state kept across reboots, the boot generation (heartbeat's "
                        "/var/lib/heartbeat; default: the --state-dir; the systemd unit passes "
                        "/var/lib/hadirector)")
    add_resource_dirs(p)
    p.add_argument("--api", metavar="ADDR:PORT", type=_args.listen_address, default=None,
                   help="serve the HTTP API, metrics and dashboard there (docs/api.md), for any "
                        "configuration; overrides [api] listen (port 0: the kernel picks one, logged)")
    p.add_argument("--api-token-file", metavar="FILE", type=_args.existing_file, default=None,
                   help="with --api: the bearer token every API request must carry (mode 0600, "
                        "as authkeys); without a token the API refuses every change")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..daemon.sdnotify import SystemdNotify

    # taken (and removed from the environment) first, so no child we start inherits it
    notify = SystemdNotify.from_environ()
    loaded = load_or_report(args, need_node=True)
    if loaded is None:
        notify.notify(STATUS="cannot start: the configuration has errors")
        return 1
    loaded = with_api(loaded, args.api, args.api_token_file)
    if loaded is None:
        notify.notify(STATUS="cannot start: the configuration has errors")
        return 1
    from ..daemon.logsetup import DaemonLog
    from ..daemon.node import Daemon, Options

    # a hang killed by systemd's watchdog (SIGABRT) leaves every thread's Python stack in the log
    faulthandler.enable()
    logs = DaemonLog(loaded.config.cluster.logging, verbose=args.verbose)
    log = logs.log
    opts = Options(state_dir=args.state_dir or default_state_dir(), resource_dirs=resource_dirs(args),
                   lib_dir=args.lib_dir, notify=notify, logs=logs)
    from ..daemon.control import ControlError
    from ..daemon.statedir import AlreadyRunning
    from ..net.transports import TransportError
    # The daemon runs on the standard asyncio loop: pyroute2's asyncio netlink sockets do not
    # work on uvloop ("cannot open a UDP handle, invalid family 16").
    try:
        return asyncio.run(Daemon(loaded, opts, log).run())
    except (OSError, ValueError, TransportError, ControlError, AlreadyRunning) as exc:
        log.error("cannot start: %s", exc)
        notify.notify(STATUS=f"cannot start: {exc}")
        return 1
    except Exception as exc:  # a bug: one line in the log, the traceback in the debug log
        log.error("stopped by an internal error: %s: %s (the traceback is logged at debug level; "
                  "run with -v to see it on stderr)", type(exc).__name__, exc)
        log.debug("internal error", exc_info=True)
        notify.notify(STATUS=f"internal error: {type(exc).__name__}: {exc}")
        return 1


def with_api(loaded, listen: str | None, token_file: str | None):
    """The configuration with `--api`/`--api-token-file` in its [api] table, checked as the
    loader checks [api] (config/api_rules.py); None (the errors printed) when it cannot work."""
    if listen is None and token_file is None:
        return loaded
    import dataclasses
    import sys

    from pydantic import ValidationError

    from ..config.api_rules import api_problems
    from ..config.errors import Collector
    from ..config.model import Api
    old = loaded.config.api
    if listen is None and old is None:
        print("hadirector run: argument --api-token-file: needs --api ADDR:PORT (or [api] listen)",
              file=sys.stderr)
        return None
    data = old.model_dump() if old is not None else {}
    data["listen"] = listen or data["listen"]
    if token_file is not None:
        data["token_file"] = token_file
    try:
        api = Api.model_validate(data)
    except ValidationError as exc:
        print(f"hadirector run: --api: {exc.errors()[0]['msg']}", file=sys.stderr)
        return None
    col = Collector()
    api_problems(api, col, lambda path: "--api-token-file" if path[-1] == "token_file" else ".".join(map(str, path)))
    if col.errors:
        for p in col.problems:
            print(p, file=sys.stderr)
        return None
    return dataclasses.replace(loaded, config=loaded.config.model_copy(update={"api": api}))
