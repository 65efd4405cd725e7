"""`hadirector real drain|disable|enable VIRTUAL REAL`: a real server in maintenance and back
(HAProxy's `set server state drain|maint|ready`, ldirectord's maintenancedir as a command)."""

from __future__ import annotations

import sys

from ..daemon.control import ControlError, request
from . import _args
from ._common import add_state_dir, default_state_dir


def register(sub) -> None:
    p = sub.add_parser(
        "real", help="put a real server in maintenance (drain, disable) or back (enable)",
        description="drain: the real stays in the table at weight 0, its open connections go on, it "
        "gets no new ones; disable: it leaves the table; enable: it is back to what its health "
        "check says. The mark goes to every node of the cluster and is kept across reload, "
        "failover and restart; `lvs --checks` and `status` show it as maintenance, not as a "
        "failure, and no alert is mailed for it. VIRTUAL: \"TCP 198.18.0.1:80\", tcp:ADDR:PORT, "
        "udp:ADDR:PORT, fwm:MARK or ADDR:PORT; REAL: ADDR:PORT, or ADDR when unique.")
    p.add_argument("action", choices=("drain", "disable", "enable"))
    p.add_argument("virtual", metavar="VIRTUAL", type=_args.virtual_service)
    p.add_argument("real", metavar="REAL", type=_args.real_server)
    add_state_dir(p)
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        reply = request(args.state_dir or default_state_dir(), "real", action=args.action,
                        virtual=args.virtual, real=args.real)
    except ControlError as exc:
        print(f"hadirector real: {exc}", file=sys.stderr)
        return 1
    print(reply.get("message", ""))
    return 0
