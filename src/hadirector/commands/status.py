"""`hadirector status`: nodes, links, groups and owners, from the running daemon."""

from __future__ import annotations

import json
import sys

from ..render.cluster import render_status
from ..daemon.control import ControlError, request
from ._common import add_state_dir, default_state_dir


def register(sub) -> None:
    p = sub.add_parser("status", help="show nodes, links and resource groups of the running daemon")
    add_state_dir(p)
    p.add_argument("--json", action="store_true", help="print the daemon's reply as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        st = request(args.state_dir or default_state_dir(), "status")
    except ControlError as exc:
        print(f"hadirector status: {exc}", file=sys.stderr)
        return 1
    st.pop("ok", None)
    if args.json:
        print(json.dumps(st, indent=2, sort_keys=True))
    else:
        sys.stdout.write(render_status(st))
    return 0
