"""`hadirector check`: validate a configuration, print a summary; exit 1 with every error."""

from __future__ import annotations

from ..config.summary import summary_lines
from ._common import add_config_options, load_or_report


def register(sub) -> None:
    p = sub.add_parser("check", help="validate a configuration and print a summary",
                       description="Validate a native TOML file or a legacy heartbeat directory. "
                       "Exit 0 when valid, 1 with every error on stderr (file:line or key.path).")
    add_config_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    loaded = load_or_report(args, need_node=False)
    if loaded is None:
        return 1
    print("\n".join(summary_lines(loaded)))
    return 0
