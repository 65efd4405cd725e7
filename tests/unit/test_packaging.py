"""Issue 13 item 1: the wheel. Its runtime dependencies are exactly what the runtime code imports
(read from every import in src/, lazy ones too); it carries the unit, the logrotate file, the
man pages and the examples; built and installed into a fresh virtualenv it runs.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from hdtest import need

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "hadirector"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Imported only where the code carries on without them (an optional extra), or only by tooling
# that is not the program: module -> (extra, why)
OPTIONAL = {
    "uvloop": ("fast", "tried first, the stock asyncio loop otherwise"),
    "argcomplete": ("completion", "shell completion; the CLI works without it"),
    "pytest": ("test", "hadirector/lab/testing.py is a pytest plugin, loaded only by pytest"),
}


def _dist_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")


def _imports() -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every import outside the standard library
    and outside a `try: ... except ImportError` (those are optional by construction)."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                    for h in node.handlers):
                for inner in node.body:
                    guarded.update(id(n) for n in ast.walk(inner))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "hadirector":
                    continue
                if id(node) in guarded:
                    top = f"optional:{top}"
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_runtime_dependencies_are_what_runtime_code_imports():
    imports = _imports()
    dists = metadata.packages_distributions()
    needed = {}
    for mod, files in imports.items():
        if mod.startswith("optional:") or mod in OPTIONAL:
            continue
        assert mod in dists, f"{mod} (imported by {sorted(files)}) belongs to no installed distribution"
        for d in dists[mod]:
            needed[d.lower().replace("_", "-")] = sorted(files)
    declared = {_dist_name(r) for r in PYPROJECT["project"]["dependencies"]}
    missing = sorted(set(needed) - declared)
    unused = sorted(declared - set(needed))
    assert not missing, f"imported at run time but not in [project] dependencies: " \
                        f"{[(m, needed[m]) for m in missing]}"
    assert not unused, f"in [project] dependencies but imported by no runtime code: {unused} " \
                       "(move to an extra)"


def test_optional_imports_are_guarded_and_in_their_extra():
    imports = _imports()
    extras = PYPROJECT["project"]["optional-dependencies"]
    for mod, (extra, why) in OPTIONAL.items():
        users = imports.get(mod, set())
        if mod != "pytest":
            assert not users, f"{mod} is optional ({why}) but imported without an ImportError guard in {users}"
        assert any(_dist_name(r) == mod for r in extras[extra]), f"{mod} missing from the {extra!r} extra"


def test_every_data_file_is_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["hadirector"]
    data = [p.relative_to(SRC).as_posix() for p in (SRC / "data").rglob("*") if p.is_file()]
    assert data, "no package data"
    import fnmatch
    loose = [d for d in data if not any(fnmatch.fnmatch(d, pat) and d.count("/") == pat.count("/")
                                        for pat in patterns)]
    assert not loose, f"not matched by [tool.setuptools.package-data]: {loose}"


def _run(*argv, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 600)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "NOTIFY_SOCKET")}
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, **kw)
    assert p.returncode == 0, f"{argv} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.mark.install
def test_wheel_builds_and_runs_in_a_fresh_venv(tmp_path):
    """`pip wheel .`, then a new venv that has nothing but the wheel and its dependencies:
    --version, check on the packaged example, the packaged man page renders."""
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT, cwd=tmp_path)
    wheels = list(dist.glob("hadirector-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for f in ("hadirector/data/systemd/hadirector.service", "hadirector/data/systemd/hadirector.default",
              "hadirector/data/logrotate/hadirector", "hadirector/data/man/hadirector.8",
              "hadirector/data/man/hadirector.conf.5", "hadirector/data/examples/cluster.toml",
              "hadirector/py.typed"):
        assert f in names, f"{f} not in the wheel"
    requires = {_dist_name(line.split(":", 1)[1].strip()) for line in meta.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert requires == {_dist_name(r) for r in PYPROJECT["project"]["dependencies"]}, requires

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    py = venv / "bin" / "python"
    # the project's pip installs into the new venv (no pip bootstrap): only the wheel and what it requires
    _run(sys.executable, "-m", "pip", "--python", py, "install", "-q", wheels[0])
    prog = venv / "bin" / "hadirector"
    out = _run(prog, "--version").stdout
    from hadirector import __version__
    assert out.strip() == f"hadirector {__version__}"
    installed = _run(py, "-c", "import importlib.metadata as m; print(sorted(d.metadata['Name'].lower() "
                               "for d in m.distributions()))").stdout
    assert "argcomplete" not in installed and "aiosmtpd" not in installed and "pytest" not in installed, installed
    example = _run(py, "-c", "from importlib import resources; "
                             "print(resources.files('hadirector') / 'data' / 'examples' / 'cluster.toml')").stdout.strip()
    assert str(venv) in example
    check = _run(prog, "check", "-c", example, "--node", "primarylb")
    assert check.stdout.startswith(f"configuration OK: {example}"), check.stdout
    # a bad argument is one line there too (the CLI runs without argcomplete)
    bad = subprocess.run([prog, "standby", "--wait", "nan"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "Traceback" not in bad.stderr
    # the files it installs, from the installed package, with ExecStart naming this venv's program
    root = tmp_path / "root"
    root.mkdir()
    _run(prog, "install-files", "--root", root)
    unit = (root / "usr/local/lib/systemd/system/hadirector.service").read_text()
    assert f"ExecStart={prog} run " in unit
    need("man")
    page = subprocess.run(["man", "-l", str(root / "usr/local/share/man/man8/hadirector.8")], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, MANPAGER="cat", MANWIDTH="80"))
    assert page.returncode == 0 and "hadirector check" in page.stdout, page.stderr
