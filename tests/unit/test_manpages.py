"""Issue 13 item 1: the manual pages shipped in the package are generated (scripts/manpages.py,
`make man`) from the argument parser and docs/, are up to date, name every command, option and
configuration key, and render with `man -l` without a warning. Shell completion works through
argcomplete and the CLI works without it."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hadirector import cli
from hadirector.config import model
from hadirector.config.legacy import hacf, ldirectord
from hdtest import need

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "src" / "hadirector" / "data" / "man"


def _generator():
    spec = importlib.util.spec_from_file_location("manpages", ROOT / "scripts" / "manpages.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _plain(roff: str) -> str:
    """Roff text with its escapes undone, for looking words up."""
    return re.sub(r"\\f[BIRP]|\\&|\\/|\\,", "", roff).replace("\\-", "-").replace("\\e", "\\")


@pytest.mark.parametrize("name", ["hadirector.8", "hadirector.conf.5"])
def test_shipped_page_is_up_to_date(name):
    pytest.importorskip("argparse_manpage", reason="argparse-manpage is in the test extra")
    gen = _generator()
    fresh = gen.PAGES[name]()
    shipped = (MAN / name).read_text(encoding="utf-8")
    assert gen.same_page(shipped, fresh), f"src/hadirector/data/man/{name} is out of date: run `make man`"


def _subparsers():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_command_and_option_is_in_hadirector_8():
    page = _plain((MAN / "hadirector.8").read_text(encoding="utf-8"))
    sections = re.split(r"^\.SH ", page, flags=re.M)
    missing = []
    for cmd, p in _subparsers().items():
        sec = next((s for s in sections if s.startswith(f"COMMAND 'hadirector {cmd}'")), None)
        opts = next((s for s in sections if s.startswith(f"OPTIONS 'hadirector {cmd}'")), "")
        if sec is None:
            missing.append(f"command {cmd}")
            continue
        for a in p._actions:
            if a.help is argparse.SUPPRESS or isinstance(a, argparse._HelpAction):
                continue
            for o in a.option_strings:
                if o not in opts:
                    missing.append(f"{cmd} {o}")
    for o in ("--version", "--debug"):
        if o not in page:
            missing.append(o)
    assert not missing, f"not in hadirector(8) (run `make man`): {missing}"


def test_hadirector_8_has_the_operations_sections():
    page = (MAN / "hadirector.8").read_text(encoding="utf-8")
    for title in ("EXIT STATUS", "FILES", "SIGNALS", "ENVIRONMENT", "SEE ALSO"):
        assert re.search(rf"^\.SH {title}$", page, re.M), title
    assert "SIGHUP" in page and "/run/hadirector" in _plain(page)


MODELS = [model.Config, model.Cluster, model.Link, model.Timing, model.Auth, model.PingGroup, model.Respawn,
          model.Logging, model.Group, model.VipResource, model.ScriptResource, model.SystemdResource,
          model.OcfResource, model.BalancerResource, model.Balancer, model.Alerts, model.Fallback,
          model.VirtualService, model.Real]


def test_every_configuration_key_and_directive_is_in_hadirector_conf_5():
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_\-]*", _plain((MAN / "hadirector.conf.5").read_text(encoding="utf-8"))))
    keys = {f for cls in MODELS for f in cls.model_fields}
    directives = hacf.KNOWN | set(ldirectord.GLOBAL_KEYS) | set(ldirectord.VIRTUAL_KEYS)
    missing = sorted((keys | directives) - words)
    assert not missing, f"not in hadirector.conf(5) (document them in docs/configuration.md, run `make man`): {missing}"


@pytest.mark.parametrize("name", ["hadirector.8", "hadirector.conf.5"])
def test_man_renders_without_warnings(name):
    need("man")
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", LC_ALL="C.UTF-8")
    p = subprocess.run(["man", "--warnings=w", "-l", str(MAN / name)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    head = "HADIRECTOR(8)" if name == "hadirector.8" else "HADIRECTOR.CONF(5)"
    assert p.stdout.lstrip().startswith(head) and "NAME" in p.stdout
    if name == "hadirector.8":
        assert "hadirector standby" in p.stdout and "--wait SECONDS" in p.stdout
    else:
        assert "auto_failback" in p.stdout and "ldirectord.cf" in p.stdout


def _complete(line: str, tmp_path, block_argcomplete: bool = False) -> subprocess.CompletedProcess:
    out = tmp_path / "completions"
    env = dict(os.environ, _ARGCOMPLETE="1", COMP_LINE=line, COMP_POINT=str(len(line)), _ARGCOMPLETE_IFS="\n",
               _ARGCOMPLETE_STDOUT_FILENAME=str(out), _ARGCOMPLETE_SUPPRESS_SPACE="1", COMP_TYPE="9")
    env.pop("NOTIFY_SOCKET", None)
    code = "import sys\n"
    if block_argcomplete:
        code += "sys.modules['argcomplete'] = None  # as if it were not installed\n"
    code += "from hadirector.cli import main\nsys.argv = ['hadirector']\nsys.exit(main())\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


def test_completion_with_argcomplete(tmp_path):
    pytest.importorskip("argcomplete")
    p = _complete("hadirector sta", tmp_path)
    assert p.returncode == 0, p.stderr
    words = set((tmp_path / "completions").read_text().split())
    assert {"status", "standby"} <= words and "check" not in words, words
    _complete("hadirector standby --wa", tmp_path)
    assert "--wait" in (tmp_path / "completions").read_text()


def test_cli_works_without_argcomplete(tmp_path):
    """Asked for completions with argcomplete missing, the program just runs (here: no command
    given -> its help on stderr, exit 2), and never fails on the import."""
    p = _complete("hadirector sta", tmp_path, block_argcomplete=True)
    assert p.returncode == 2 and "COMMAND" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "completions").exists()
