"""`hadirector lab up|down|list|clean`: build a network-namespace lab by hand (root).

  hadirector lab up [--name N] [--preset balancer|director-pair] [--layout two-arm|one-arm]
                    [--reals 3] [--http python|nginx|none] [--hb-link]
  hadirector lab down [--name N]        stop its processes (by pid) and delete its namespaces
  hadirector lab list                   labs that are up
  hadirector lab clean                  delete namespaces left by test runs whose process died

A lab's namespaces are named `hdl-<name>-<host>`; enter one with
`ip netns exec hdl-<name>-client bash`. Addresses come from 198.18.0.0/15 and nothing has a
route out. The description of a running lab is kept in /run/hadirector-lab/<name>.json.
"""

from __future__ import annotations

import json
import os
import sys

from . import _args

STATE_DIR = "/run/hadirector-lab"


def register(sub) -> None:
    p = sub.add_parser("lab", help="build or remove a network-namespace lab (root)",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("up", "down", "list", "clean"))
    p.add_argument("--name", default="lab", type=_args.name(r"[a-z0-9]{1,8}", "1-8 lowercase letters or digits",
                                                            bad=("", "Lab", "toolongname", "a-b"), example="lab"),
                   help="lab name (default: lab)")
    p.add_argument("--preset", choices=("balancer", "director-pair"), default="balancer")
    p.add_argument("--layout", choices=("two-arm", "one-arm"), default="two-arm",
                   help="balancer: reals behind the director (two-arm) or on the client LAN")
    p.add_argument("--reals", type=_args.integer(1, 32, "a number of real servers"), default=3,
                   help="balancer: how many real servers (default 3)")
    p.add_argument("--http", choices=("python", "nginx", "none"), default="python",
                   help="HTTP server on each real, answering its name")
    p.add_argument("--hb-link", action="store_true", help="director-pair: a second heartbeat link")
    p.set_defaults(func=run)


def _path(name: str) -> str:
    return os.path.join(STATE_DIR, f"{name}.json")


def run(args) -> int:
    if os.geteuid() != 0:
        print("hadirector lab: needs root (network namespaces)", file=sys.stderr)
        return 1
    from ..lab import topology
    if args.action == "list":
        for f in sorted(os.listdir(STATE_DIR)) if os.path.isdir(STATE_DIR) else []:
            with open(os.path.join(STATE_DIR, f)) as fh:
                d = json.load(fh)
            print(f"{f[:-5]}: " + ", ".join(f"{h} ({ns})" for h, ns in d["hosts"].items()))
        return 0
    if args.action == "clean":
        gone = topology.remove_namespaces(topology.stale_namespaces())
        for n in gone:
            print(f"deleted netns {n}")
        return 0
    if args.action == "down":
        try:
            with open(_path(args.name)) as fh:
                desc = json.load(fh)
        except FileNotFoundError:
            print(f"hadirector lab: no lab named {args.name} is up", file=sys.stderr)
            return 1
        for line in topology.teardown(desc):
            print(line)
        os.unlink(_path(args.name))
        return 0
    # up
    if os.path.exists(_path(args.name)):
        print(f"hadirector lab: lab {args.name} is already up (hadirector lab down --name {args.name})",
              file=sys.stderr)
        return 1
    from ..lab import balancer, director_pair
    lab = topology.Lab(prefix=f"hdl-{args.name}")
    try:
        if args.preset == "balancer":
            bl = balancer(lab, layout=args.layout, reals=args.reals,
                          http=None if args.http == "none" else args.http)
            lines = [f"client    198.18.0.10   ({bl.client.netns})",
                     f"director  198.18.0.2 VIP {bl.vip}" + (" 198.18.1.1" if args.layout == "two-arm" else "")
                     + f"   ({bl.director.netns})"]
            lines += [f"{r.name:<9} {bl.real_addr[r.name]}   ({r.netns})" for r in bl.reals]
        else:
            dp = director_pair(lab, hb_link=args.hb_link)
            lines = [f"{h.name:<9} {dp.addr[h.name]}   ({h.netns})" for h in (dp.client, dp.a, dp.b)]
            lines.append(f"VIP (not assigned): {dp.vip}")
        desc = lab.detach()
    except BaseException:
        lab.close()
        raise
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    with open(_path(args.name), "w") as fh:
        json.dump(desc, fh, indent=1)
    print("\n".join(lines))
    print(f"enter a host: ip netns exec {lab.prefix}-client bash;  remove: hadirector lab down --name {args.name}")
    return 0
