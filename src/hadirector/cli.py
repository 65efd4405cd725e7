# PYTHON_ARGCOMPLETE_OK (argcomplete: this program answers completion requests)
"""Command line: `hadirector <command>`. Each command lives in `hadirector.commands.<name>` and
registers itself with `register(subparsers)`, so adding a command means adding one module.

Errors are one line on stderr, never a traceback: a bad argument is refused by the parser
(commands/_args.py: exit 2), a command that fails says why (exit 1), and anything unexpected is
caught here and shown as one line with a hint to run with `--debug`, which shows the traceback.
Shell completion comes from argcomplete when it is installed (`pip install hadirector[completion]`;
`hadirector install-files` installs the bash hook); without it the CLI works the same.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback

from . import __version__, commands
from .commands._args import Parser, one_line, prog_of

DESCRIPTION = ("High-availability load-balancer director: heartbeat-compatible failover, "
               "nftables or userspace balancing, ldirectord-style health checks.")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hadirector", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"hadirector {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an unexpected error (also accepted after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    for p in sub.choices.values():
        # `hadirector status --debug` as well as `hadirector --debug status`; SUPPRESS keeps the
        # sub-parser from overwriting the global value with its default
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _complete(parser: argparse.ArgumentParser) -> None:
    """argcomplete's hook: answers the shell and exits when called for completion; a no-op
    otherwise or when argcomplete is not installed."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    _complete(parser)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): no second error when Python flushes stdout at exit
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into one line
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with --debug for the traceback)"
        print(f"{prog_of(args)}: internal error: {one_line(exc)}{hint}", file=sys.stderr)
        return 1
