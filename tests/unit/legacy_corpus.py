"""The legacy corpus (tests/fixtures/legacy): one directory per rule, holding the files and an
`expect` file with hadirector's verdict, the real program's verdict and the messages.

`expect` lines: `# what the case shows (and the source of the rule)`, `verdict: ok|error` (hadirector
on the director: node alpha, interfaces eth0 198.18.0.1/24 and eth1 198.18.1.1/24), `heartbeat:
ok|refused|-` and `ldirectord: ok|refused LINE|-` (what heartbeat 3 / ldirectord say; `-` when they
are not asked), `differs: why` when hadirector's verdict differs on purpose, `authkeys-mode: 644`,
and `message: FILE:LINE: [warning: ]TEXT` (each must start one of the problems hadirector prints).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hadirector.config import ConfigError, load_config
from hadirector.config.machine import Machine, machine_problems

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "legacy"
NODE = "alpha"
# the machine the corpus is judged on: the same as the one tests/unit/heartbeat_run.py gives heartbeat
INTERFACES = frozenset({"lo", "eth0", "eth1"})
ADDRESSES = (("eth0", "198.18.0.1/24"), ("eth1", "198.18.1.1/24"))
SCRIPTS = ("httpd",)


@dataclass
class Case:
    name: str
    about: str = ""
    verdict: str = ""
    heartbeat: str = "-"
    ldirectord: str = "-"
    differs: str | None = None
    mode: int = 0o600
    messages: list[str] = field(default_factory=list)


def cases() -> list[Case]:
    out = []
    for d in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        c = Case(d.name)
        for line in (d / "expect").read_text().splitlines():
            if line.startswith("# "):
                c.about = line[2:]
                continue
            key, _, value = line.partition(": ")
            if key == "message":
                c.messages.append(value)
            elif key == "authkeys-mode":
                c.mode = int(value, 8)
            elif key in ("verdict", "heartbeat", "ldirectord", "differs"):
                setattr(c, key, value)
            else:
                raise ValueError(f"{d}/expect: unknown line {line!r}")
        out.append(c)
    return out


def copy_case(case: Case, tmp_path: Path) -> Path:
    """The case's files in tmp_path/NAME (git keeps no file modes: authkeys gets the case's)."""
    dst = tmp_path / case.name
    shutil.copytree(CORPUS / case.name, dst, ignore=shutil.ignore_patterns("expect"))
    os.chmod(dst / "authkeys", case.mode)
    return dst


def corpus_machine(tmp_path: Path) -> Machine:
    rd = tmp_path / "resource.d"
    rd.mkdir(exist_ok=True)
    for name in SCRIPTS:
        (rd / name).write_text("#!/bin/sh\nexit 0\n")
        os.chmod(rd / name, 0o755)
    return Machine(NODE, INTERFACES, ADDRESSES, (str(rd),))


def our_problems(d: Path, machine: Machine) -> list[tuple[str, bool]]:
    """Every problem hadirector reports for directory `d` on `machine` as the director, as
    ("FILE:LINE: [warning: ]message" with the directory left out, is it a warning)."""
    try:
        loaded = load_config(ha_dir=d, node=NODE)
        problems = list(loaded.warnings) + machine_problems(loaded, machine, True)
    except ConfigError as exc:
        problems = exc.warnings + exc.problems
    return [(str(p).replace(f"{d}/", ""), p.warning) for p in problems]
