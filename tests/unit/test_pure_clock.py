"""Pure modules never read a clock: they are fed `now` (int ms). This walks their syntax trees
for calls to time.time/monotonic/perf_counter (and their _ns forms), datetime.now/utcnow/today
and `<loop>.time()`, and for `from time import ...` of those; a docstring that names them is fine."""

import ast
from pathlib import Path

import hadirector

SRC = Path(hadirector.__file__).resolve().parent
PURE_DIRS = ("cluster", "balancer", "config")
DRIVERS: set[str] = set()  # drivers in these folders (none: the balancer supervisor is daemon/balancer.py)
PURE_FILES = ("checks/plan.py", "checks/risefall.py", "checks/base.py")
CLOCKS = {"time", "monotonic", "perf_counter", "time_ns", "monotonic_ns", "perf_counter_ns"}


def pure_modules() -> list[Path]:
    out = []
    for d in PURE_DIRS:
        out += [p for p in sorted((SRC / d).rglob("*.py")) if str(p.relative_to(SRC)) not in DRIVERS]
    return out + [SRC / f for f in PURE_FILES]


def clock_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for a in node.names:
                if a.name in CLOCKS:
                    found.append(f"{path.name}:{node.lineno}: from {node.module} import {a.name}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        f, owner = node.func, node.func.value
        name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
        if (name == "time" and f.attr in CLOCKS) or (name == "datetime" and f.attr in ("now", "utcnow", "today")) \
                or (f.attr == "time" and name.endswith("loop")):
            found.append(f"{path.name}:{node.lineno}: {name}.{f.attr}()")
    return found


def test_the_walker_finds_clock_reads(tmp_path):
    p = tmp_path / "m.py"
    p.write_text('"""time.time() in a docstring is fine."""\nimport time\nfrom time import monotonic\n'
                 "def f(loop, self):\n    return time.time(), loop.time(), self._loop.time(), time.monotonic_ns()\n")
    assert [r.split(": ", 1)[1] for r in clock_reads(p)] == [
        "from time import monotonic", "time.time()", "loop.time()", "_loop.time()", "time.monotonic_ns()"]


def test_no_pure_module_reads_a_clock():
    modules = pure_modules()
    assert len(modules) > 20 and all(m.exists() for m in modules)
    found = [r for m in modules for r in clock_reads(m)]
    assert found == [], found
