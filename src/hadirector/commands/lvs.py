"""`hadirector lvs`: the running balancer in ipvsadm's own layout (ipvsadm -L [-n])."""

from __future__ import annotations

import json
import sys

from ..daemon.control import ControlError, request
from ..render.checks import render_checks
from ..render.lvs import connections_json, decode_snapshot, lvs_reply_json, render_connections, render_lvs, system_resolvers
from ._common import add_state_dir, default_state_dir


def register(sub) -> None:
    p = sub.add_parser(
        "lvs", help="show the virtual services like `ipvsadm -L -n`",
        description="Print the running balancer's virtual services and real servers in "
        "ipvsadm's layout (same columns, widths and rounding as `ipvsadm -L`), read from the "
        "daemon's control socket. Exit 1 when no daemon is running.")
    add_state_dir(p)
    p.add_argument("-n", "--numeric", action="store_true",
                   help="numeric addresses and ports (no reverse DNS or service names)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--stats", action="store_true", help="connection, packet and byte counters")
    what.add_argument("--rate", action="store_true", help="rates per second")
    what.add_argument("-c", "--connection", action="store_true",
                      help="the connection table like `ipvsadm -L -c`: direct-routing flows, "
                           "closing flows and persistence templates; on a backup, the entries "
                           "flow sync holds for a takeover (said on standard error, `synced` in --json)")
    p.add_argument("--exact", action="store_true", help="exact numbers instead of K/M/G rounding")
    p.add_argument("--json", action="store_true",
                   help="the same table as JSON, with each real's health check state")
    p.add_argument("--would", action="store_true",
                   help="on a node where the balancer is not active: the table it would install "
                        "now, from its own health checks (what it installs when it takes over)")
    p.add_argument("--checks", action="store_true",
                   help="after the table, each real's health check: state, last result, last "
                        "change and failure reason (the table itself stays ipvsadm's, for scripts)")
    p.set_defaults(func=run)


def fetch_lvs(state_dir: str, timeout: float = 10.0, would: bool = False,
              connections: bool = False) -> dict:
    """Ask the daemon at `<state_dir>/control.sock` for `{"cmd": "lvs"}`; its reply
    (`render.lvs.lvs_snapshot`). Raises ControlError with a message fit for the user."""
    if connections:
        return request(state_dir, "lvs", timeout=timeout, would=would, connections=True)
    return request(state_dir, "lvs", timeout=timeout, would=would)


def inactive_note(reply: dict) -> str | None:
    """What to say when the balancer does not run on this node."""
    if reply.get("active", True):
        return None
    held = reply.get("held_by") or []
    where = f"held by {', '.join(held)}" if held else "held by no node"
    return f"balancer not active on this node ({where})"


def run(args) -> int:
    state_dir = args.state_dir or default_state_dir()
    try:
        reply = fetch_lvs(state_dir, would=args.would, connections=args.connection)
        desired, stats = decode_snapshot(reply)
    except (ControlError, ValueError) as exc:
        print(f"hadirector lvs: {exc}", file=sys.stderr)
        return 1
    if args.connection:
        return _connections(args, reply)
    checks = reply.get("checks") or {}
    note = inactive_note(reply)
    if note and not args.json:
        # on standard error: standard output stays ipvsadm's table (empty here, as ipvsadm's is)
        print(f"hadirector lvs: {note}" + ("; the table it would install:" if args.would else
                                           " (--would: the table it would install)"), file=sys.stderr)
    if args.json:
        out = lvs_reply_json(reply, would=args.would)
        print(json.dumps(out, indent=2))
        return 0
    host_name = port_name = None
    if not args.numeric:
        host_name, port_name = system_resolvers()
    mode = "stats" if args.stats else "rate" if args.rate else "list"
    sys.stdout.write(render_lvs(desired, stats, numeric=args.numeric, mode=mode, exact=args.exact,
                                host_name=host_name, port_name=port_name))
    if args.checks:
        sys.stdout.write(render_checks(checks))
    return 0


def _connections(args, reply: dict) -> int:
    conns = reply.get("connections") or {"rows": [], "synced": False, "source": None}
    rows = conns.get("rows") or []
    if args.json:
        print(json.dumps(connections_json(reply), indent=2))
        return 0
    if conns.get("synced"):
        print(f"hadirector lvs: balancer not active on this node; {len(rows)} entries synced from "
              f"{conns.get('source') or 'no active director yet'} (loaded into the data plane at a "
              "takeover)", file=sys.stderr)
    elif not reply.get("active", True):
        print(f"hadirector lvs: {inactive_note(reply)}", file=sys.stderr)
    host_name = port_name = None
    if not args.numeric:
        host_name, port_name = system_resolvers()
    sys.stdout.write(render_connections(rows, numeric=args.numeric, host_name=host_name,
                                        port_name=port_name))
    return 0
