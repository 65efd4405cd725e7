"""`hadirector install-files`: put the files the wheel carries where the system looks for them.

A wheel can only install into the Python environment (a venv, or /usr/local with pip), so the
systemd unit, its defaults file, the logrotate file, the manual pages, the examples and the
shell completion travel as package data (hadirector/data/) and this command copies them out.
It also writes the unit's ExecStart with the path this very `hadirector` was installed at
(/opt/hadirector/bin for a venv, /usr/local/bin for pip outside one), which no static unit can
know. `--root DIR` stages everything below DIR (a package build, a test); nothing outside it is
touched.

Configuration files (/etc/default/hadirector, /etc/logrotate.d/hadirector) that exist and differ
are kept (the administrator may have edited them) unless --force; the others are replaced when
they differ. Every file is reported: installed, replaced, unchanged or kept.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from importlib import resources

from . import _args

PROG = "hadirector install-files"
UNIT_PROGRAM = "/usr/local/bin/hadirector"  # the ExecStart program in the packaged unit


@dataclass(frozen=True)
class Item:
    source: str  # below hadirector/data/
    target: str  # absolute path on the installed system
    mode: int = 0o644
    config: bool = False  # an administrator's file: kept when it differs


ITEMS = (
    Item("systemd/hadirector.service", "/usr/local/lib/systemd/system/hadirector.service"),
    Item("systemd/hadirector.default", "/etc/default/hadirector", config=True),
    Item("logrotate/hadirector", "/etc/logrotate.d/hadirector", config=True),
    Item("man/hadirector.8", "/usr/local/share/man/man8/hadirector.8"),
    Item("man/hadirector.conf.5", "/usr/local/share/man/man5/hadirector.conf.5"),
    Item("examples/cluster.toml", "/usr/local/share/doc/hadirector/examples/cluster.toml"),
    Item("systemd/resource-scripts.conf", "/usr/local/share/doc/hadirector/examples/resource-scripts.conf"),
)
COMPLETION = "/usr/local/share/bash-completion/completions/hadirector"


def register(sub) -> None:
    p = sub.add_parser("install-files", help="install the systemd unit, logrotate file, man pages, "
                       "examples and completion from the package",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--root", metavar="DIR", type=_args.existing_dir, default="/",
                   help="install below this directory (default /)")
    p.add_argument("--bindir", metavar="DIR", type=_args.existing_dir, default=None,
                   help="where the hadirector program is, for the unit's ExecStart (default: "
                        "where this one was installed)")
    p.add_argument("--force", action="store_true", help="replace configuration files that differ")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    p.set_defaults(func=run)


def program_path(bindir: str | None) -> str:
    """The installed `hadirector` script: in --bindir, else the scripts directory of this Python
    (a venv's bin, /usr/local/bin), else the one on PATH."""
    candidates = [bindir] if bindir else [sysconfig.get_path("scripts"), os.path.dirname(sys.argv[0] or "")]
    for d in candidates:
        if d:
            path = os.path.join(os.path.abspath(d), "hadirector")
            if os.access(path, os.X_OK) and os.path.isfile(path):
                return path
    found = shutil.which("hadirector")
    if found:
        return os.path.abspath(found)
    where = bindir or sysconfig.get_path("scripts")
    raise FileNotFoundError(f"no executable hadirector in {where} (pass --bindir)")


def packaged(source: str) -> bytes:
    return resources.files("hadirector").joinpath("data", *source.split("/")).read_bytes()


def unit_text(program: str) -> bytes:
    text = packaged("systemd/hadirector.service").decode()
    if f"ExecStart={UNIT_PROGRAM} " not in text:
        raise RuntimeError("the packaged unit has no ExecStart=/usr/local/bin/hadirector line")
    return text.replace(f"ExecStart={UNIT_PROGRAM} ", f"ExecStart={program} ").encode()


def completion_text() -> bytes | None:
    """bash completion through argcomplete, when it is installed."""
    try:
        import argcomplete
    except ImportError:
        return None
    return argcomplete.shellcode(["hadirector"], shell="bash").encode()


def plan(bindir: str | None) -> list[tuple[Item, bytes]]:
    program = program_path(bindir)
    out = []
    for item in ITEMS:
        data = unit_text(program) if item.source == "systemd/hadirector.service" else packaged(item.source)
        out.append((item, data))
    comp = completion_text()
    if comp is not None:
        out.append((Item("(argcomplete)", COMPLETION), comp))
    return out


def install(root: str, bindir: str | None, force: bool = False, dry_run: bool = False) -> list[str]:
    """Install every file below `root`; one line of report per file."""
    report = []
    for item, data in plan(bindir):
        path = os.path.join(root, item.target.lstrip("/"))
        try:
            with open(path, "rb") as f:
                old = f.read()
        except FileNotFoundError:
            old = None
        if old == data:
            report.append(f"unchanged {path}")
            continue
        if old is not None and item.config and not force:
            report.append(f"kept      {path} (it differs from the packaged one: yours is kept; "
                          "--force replaces it)")
            continue
        verb = "replaced " if old is not None else "installed"
        if not dry_run:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            tmp = path + ".hadirector-new"
            with open(tmp, "wb") as f:
                f.write(data)
            os.chmod(tmp, item.mode)
            os.replace(tmp, path)
        report.append(f"{verb} {path}" + (" (dry run)" if dry_run else ""))
    if completion_text() is None:
        report.append("no shell completion: argcomplete is not installed (pip install 'hadirector[completion]')")
    return report


def run(args) -> int:
    try:
        lines = install(args.root, args.bindir, force=args.force, dry_run=args.dry_run)
    except OSError as exc:
        return _args.fail(PROG, _args.one_line(exc))
    for line in lines:
        print(line)
    if args.root == "/" and not args.dry_run:
        print("next: edit /etc/default/hadirector, `hadirector check` the configuration, then "
              "`systemctl daemon-reload && systemctl enable --now hadirector`")
    return 0
