"""Helpers for the legacy-import tests: build a heartbeat directory in tmp_path and load it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from hadirector.config import ConfigError, load_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HADIRECTOR = str(Path(sys.executable).parent / "hadirector")  # the real console script

HACF = """\
keepalive 1
deadtime 10
udpport 694
ucast eth0 198.18.0.2
node alpha
node beta
"""
AUTHKEYS = "auth 1\n1 sha1 s3cret\n"
HARESOURCES = "alpha 198.18.0.100/24/eth0 nginx\n"


def make_ha_dir(tmp_path: Path, hacf: str = HACF, authkeys: str = AUTHKEYS,
                haresources: str = HARESOURCES, ldirectord: str | None = None,
                mode: int = 0o600, name: str = "ha.d") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "ha.cf").write_text(hacf)
    (d / "authkeys").write_text(authkeys)
    os.chmod(d / "authkeys", mode)
    (d / "haresources").write_text(haresources)
    if ldirectord is not None:
        (d / "ldirectord.cf").write_text(ldirectord)
    return d


def copy_fixture(tmp_path: Path, *parts: str) -> Path:
    """Copy a fixture directory (git does not keep mode 600) and make authkeys 0600."""
    dst = tmp_path.joinpath(*parts)
    shutil.copytree(FIXTURES.joinpath(*parts), dst)
    os.chmod(dst / "authkeys", 0o600)
    return dst


def load(d: Path, node: str | None = "alpha"):
    return load_config(ha_dir=d, node=node)


def errors(d: Path, node: str | None = "alpha") -> list[str]:
    """Every error as printed ("file:line: message"); fails when the directory loads."""
    try:
        load_config(ha_dir=d, node=node)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    raise AssertionError(f"{d} loaded without errors")


def one_error(d: Path, node: str | None = "alpha") -> str:
    errs = errors(d, node)
    assert len(errs) == 1, errs
    return errs[0]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HADIRECTOR, *args], capture_output=True, text=True, timeout=60)
