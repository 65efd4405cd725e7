"""`hadirector reload`: the running daemon re-reads its configuration and applies the difference
(as SIGHUP does), and says what changed."""

from __future__ import annotations

import sys

from ..daemon.control import ControlError, request
from ._common import add_state_dir, default_state_dir


def register(sub) -> None:
    p = sub.add_parser(
        "reload", help="re-read the configuration and apply the difference",
        description="Ask the running daemon to re-read its configuration files (as SIGHUP does). "
        "Prints each change in words; a change that needs a restart is named with its setting and "
        "not applied. Exit 0 when the configuration was applied, 1 with the reasons when it was "
        "refused (the running configuration stays) or no daemon runs.")
    add_state_dir(p)
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        reply = request(args.state_dir or default_state_dir(), "reload", timeout=60)
    except ControlError as exc:
        print(f"hadirector reload: {exc}", file=sys.stderr)
        return 1
    if not reply.get("applied"):
        for e in reply.get("errors", []):
            print(e, file=sys.stderr)
        print("hadirector reload: refused; the running configuration stays", file=sys.stderr)
        return 1
    for line in reply.get("changes", []):
        print(line)
    for line in reply.get("restart", []):
        print(f"not applied, needs a restart: {line}")
    if not reply.get("changes") and not reply.get("restart"):
        print("no changes")
    return 0
