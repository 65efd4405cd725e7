"""`hadirector convert`: legacy heartbeat/ldirectord files -> one native TOML file, written as a
person would write it (config/convert.py): only what differs from the defaults, globals kept
global, a comment on each block naming the legacy line it came from."""

from __future__ import annotations

import os
import sys

from ..config.convert import convert_text
from . import _args
from ._common import load_or_report


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert ha.cf/authkeys/haresources/ldirectord.cf to TOML",
                       description="Read the legacy files in DIR and write the equivalent native TOML: "
                       "loading it gives the same configuration.")
    p.add_argument("--ha-dir", metavar="DIR", required=True, type=_args.existing_dir)
    p.add_argument("--node", metavar="NAME", type=_args.node_name,
                   help="this node's name (default: uname -n), as for check; ha.cf `autojoin any` adds it")
    p.add_argument("-o", "--output", metavar="FILE", type=_args.output_file, help="write here (mode 0600: it holds the key) "
                   "instead of standard output")
    p.set_defaults(func=run, config=None)


def run(args) -> int:
    loaded = load_or_report(args, need_node=False)
    if loaded is None:
        return 1
    header = (f"# hadirector configuration converted from {os.path.abspath(args.ha_dir)}: values that differ\n"
              "# from the defaults (docs/configuration.md); each comment names the legacy lines.")
    text = convert_text(loaded.config, loaded.locate, header)
    if args.output:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
