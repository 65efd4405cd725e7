"""The rooms of the house import downwards only (docs/architecture.md): nothing below the daemon
imports the daemon, the lab, the commands or the renderers, and the renderers import no driver.

Read from the source with `ast` (every import statement, also inside functions, and string
arguments of importlib.import_module / __import__), so a lazy import counts as much as one at the
top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hadirector

ROOT = Path(hadirector.__file__).parent
PACKAGE = "hadirector"

BELOW_DAEMON = ("cluster", "config", "balancer", "checks", "dataplane", "net", "resources")
ABOVE = ("daemon", "lab", "commands", "render", "cli")
RENDER_MAY_NOT = ("daemon", "lab", "commands", "cli")

# Imports that break the rule today, each with the work that removes it. The test fails when one
# of them is gone too, so the list cannot outlive the fix (remove the entry with it).
KNOWN: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module the source of `module` imports (for `from X import a`:
    X and X.a)."""
    tree = ast.parse(source, module)
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if a.name != "*")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                out.add(node.args[0].value)
    return out


def _rooms(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{PACKAGE}.{n}" for n in names)


def violations(lower: tuple[str, ...], forbidden: tuple[str, ...]) -> set[tuple[str, str]]:
    bad = _rooms(forbidden)
    found = set()
    for room in lower:
        for path in sorted((ROOT / room).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            for mod in imports_of(source, _module_name(path), path.name == "__init__.py"):
                if any(mod == b or mod.startswith(b + ".") for b in bad):
                    found.add((str(path.relative_to(ROOT)), mod))
    return found


def _strip_members(found: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """`from ..render.lvs import lvs_snapshot` shows as render.lvs and render.lvs.lvs_snapshot:
    keep the module only."""
    return {(f, m) for f, m in found if not any(m.startswith(o + ".") for g, o in found if g == f)}


def test_nothing_below_the_daemon_imports_the_daemon_lab_commands_or_renderers():
    found = _strip_members(violations(BELOW_DAEMON, ABOVE))
    new = sorted(found - KNOWN)
    assert not new, "imports upwards (a lower room may not import these):\n" + "\n".join(
        f"  {f} imports {m}" for f, m in new)
    fixed = sorted(KNOWN - found)
    assert not fixed, "fixed, remove from KNOWN in this test:\n" + "\n".join(
        f"  {f} -> {m}" for f, m in fixed)


def test_renderers_import_no_driver():
    found = _strip_members(violations(("render",), RENDER_MAY_NOT))
    assert not found, found


def test_the_checker_sees_an_upward_import():
    """The checker itself: lazy, relative and by-name imports are found and resolved."""
    src = ("def f():\n    from ..daemon.control import ControlServer\n    import hadirector.lab\n"
           "    __import__('hadirector.commands.demo')\n")
    got = imports_of(src, "hadirector.dataplane.probe")
    assert got == {"hadirector.daemon.control", "hadirector.daemon.control.ControlServer",
                   "hadirector.lab", "hadirector.commands.demo"}
    assert imports_of("from . import base\nfrom .. import net\n", "hadirector.checks",
                      is_package=True) == {"hadirector.checks", "hadirector.checks.base",
                                           "hadirector", "hadirector.net"}
