"""`hadirector check`: validate a configuration as `run` would read it on this node, say what `run`
will start and watch, and exit 1 with every error (file:line or key.path).

Beyond the load-time rules it checks the facts of this machine that `run` depends on (interfaces,
serial ports, resource scripts, ...; `config.machine`): errors when this machine is the node the
configuration is checked for, warnings elsewhere. `--json` prints the model and the problems as
one JSON object for tooling (the authentication key is not printed).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from dataclasses import replace

from ..config import ConfigError, load_config
from ..config.errors import Problem
from ..config.machine import Machine, machine_problems, on_director
from ..config.summary import commands, summary_lines
from ._common import add_config_options, add_resource_dirs, resource_dirs


def register(sub) -> None:
    p = sub.add_parser("check", help="validate a configuration and print what run will do",
                       description="Validate a native TOML file or a legacy heartbeat directory as `run` "
                       "reads it, and check this machine's interfaces, serial ports and resource scripts "
                       "(errors on the node being checked, warnings elsewhere). Exit 0 when valid, 1 with "
                       "every error on stderr (file:line or key.path).")
    add_config_options(p)
    add_resource_dirs(p)
    p.add_argument("--json", action="store_true",
                   help="print the model and every problem as one JSON object on stdout")
    p.set_defaults(func=run)


def this_machine(dirs: tuple[str, ...]) -> Machine:
    """The facts of the machine (and network namespace) `check` runs in."""
    from ..net import netlink

    async def facts():
        return await netlink.links(), await netlink.addresses()

    try:
        links, addrs = asyncio.run(facts())
    except (OSError, netlink.NetlinkFailure):
        return Machine(os.uname().nodename, frozenset(name for _i, name in socket.if_nameindex()), (), dirs)
    by_index = {lk.index: lk.name for lk in links}
    return Machine(os.uname().nodename, frozenset(by_index.values()),
                   tuple((by_index.get(a.index, "?"), f"{a.address}/{a.prefixlen}") for a in addrs), dirs)


def run(args) -> int:
    problems: list[Problem] = []
    loaded = None
    try:
        loaded = load_config(path=args.config, ha_dir=args.ha_dir, node=args.node, need_node=False)
        problems += loaded.warnings
    except ConfigError as exc:
        problems += exc.warnings + exc.problems
    director = False
    if loaded is not None:
        machine = this_machine(resource_dirs(args))
        director = on_director(loaded, machine.hostname)
        problems += machine_problems(loaded, machine, director)
    errors = [p for p in problems if not p.warning]
    if args.json:
        print(json.dumps(_report(loaded, problems, director), indent=2))
        return 1 if errors else 0
    for p in [p for p in problems if p.warning] + errors:
        print(p, file=sys.stderr)
    if errors:
        print(f"hadirector: configuration has {len(errors)} error(s)", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(replace(loaded, warnings=[p for p in problems if p.warning]))))
    return 0


def _report(loaded, problems: list[Problem], director: bool) -> dict:
    def plist(warning: bool) -> list[dict]:
        return [{"where": p.where, "message": p.message} for p in problems if p.warning == warning]

    out: dict = {"ok": not plist(False), "errors": plist(False), "warnings": plist(True)}
    if loaded is None:
        out["config"] = None
        return out
    cfg = loaded.config.model_dump(mode="json")
    if cfg["cluster"]["auth"].get("key"):
        cfg["cluster"]["auth"]["key"] = "(not shown)"
    for dev in (cfg["cluster"].get("fencing") or {}).get("devices", []):
        # fence device parameters hold passwords (ipmi, ilo, stonith_host lines)
        dev["params"] = {k: "(not shown)" for k in dev.get("params") or {}}
        if dev.get("param_text"):
            dev["param_text"] = "(not shown)"
    c = loaded.config.cluster
    out.update({
        "source": loaded.source, "legacy": loaded.legacy, "node": loaded.node, "on_director": director,
        "files": list(loaded.files),
        "runs": [{"what": what, "command": cmd} for what, cmd in commands(loaded)],
        "not_run": {"unused": [{"where": u.where, "directive": u.directive,
                                "text": u.text if u.directive != "stonith_host" else " ".join(u.text.split()[:2])}
                               for u in loaded.unused]},
        "config": cfg,
    })
    return out
