"""hb_standby / hb_takeover: ask the running daemon to give up or take resource groups."""

from __future__ import annotations

import sys

from ..daemon.control import ControlError, request
from . import _args
from ._common import add_state_dir, default_state_dir

WHICH = ("all", "foreign", "local", "failback")


def register_operator(sub, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text,
                       description=f"{help_text}. all: every group; local: groups whose preferred node is "
                       "this one; foreign: groups preferred by another node; failback: the groups "
                       "that auto_failback would move (heartbeat hb_standby/hb_takeover).")
    p.add_argument("which", nargs="?", default="all", choices=WHICH)
    add_state_dir(p)
    p.add_argument("--wait", type=_args.seconds(0, 3600), default=30.0, metavar="SECONDS",
                   help="wait this long for the groups to move, 0 to 3600 (0: do not wait)")
    p.set_defaults(func=lambda args: _run(name, args))


def _run(name: str, args) -> int:
    state_dir = args.state_dir or default_state_dir()
    try:
        reply = request(state_dir, name, which=args.which, wait=args.wait, timeout=args.wait + 10)
    except ControlError as exc:
        print(f"hadirector {name}: {exc}", file=sys.stderr)
        return 1
    for line in reply.get("messages", []):
        print(line)
    return 0 if reply.get("done", True) else 1
