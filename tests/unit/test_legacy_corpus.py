"""The legacy corpus (tests/fixtures/legacy): for every case, hadirector's verdict and messages as
written in its `expect`; and, where the real program is installed, heartbeat 3's or ldirectord's
verdict on the same files, equal to hadirector's unless the case says why it differs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from heartbeat_run import available, run_heartbeat
from legacy_corpus import cases, copy_case, corpus_machine, our_problems

CASES = cases()
IDS = [c.name for c in CASES]
LDIRECTORD = "/usr/sbin/ldirectord"


def test_the_corpus_is_well_formed():
    assert len(CASES) >= 50
    for c in CASES:
        assert c.about and c.verdict in ("ok", "error"), c.name
        assert c.heartbeat in ("ok", "refused", "-") and re.fullmatch(r"ok|refused \d+|-", c.ldirectord), c.name
        if c.verdict == "error":
            assert c.messages, c.name  # an error case names its error


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hadirector_verdict_and_messages(tmp_path, case):
    d = copy_case(case, tmp_path)
    problems = our_problems(d, corpus_machine(tmp_path))
    errors = [text for text, warning in problems if not warning]
    assert (not errors) == (case.verdict == "ok"), (case.name, problems)
    for m in case.messages:
        assert any(text.startswith(m) for text, _w in problems), (case.name, m, problems)


@pytest.mark.parametrize("case", [c for c in CASES if c.heartbeat != "-"],
                         ids=[c.name for c in CASES if c.heartbeat != "-"])
def test_heartbeat_verdict(tmp_path, case):
    why = available()
    if why:
        pytest.skip(why)
    d = copy_case(case, tmp_path)
    ok, lines = run_heartbeat(d, tmp_path / "etc-ha.d")
    assert ok == (case.heartbeat == "ok"), (case.name, lines)
    ours = case.verdict == "ok"
    if case.differs is None:
        assert ours == ok, f"{case.name}: hadirector says {case.verdict}, heartbeat {case.heartbeat}"
    else:
        assert ours != ok, f"{case.name} says it differs ({case.differs}) but both agree"


@pytest.mark.parametrize("case", [c for c in CASES if c.ldirectord != "-"],
                         ids=[c.name for c in CASES if c.ldirectord != "-"])
def test_ldirectord_verdict(tmp_path, case):
    if not os.path.exists(LDIRECTORD) or not shutil.which("ipvsadm"):
        pytest.skip("needs ldirectord and ipvsadm (installed by `make test` as root)")
    d = copy_case(case, tmp_path)
    p = subprocess.run([LDIRECTORD, "-d", str(d / "ldirectord.cf"), "status"], capture_output=True, text=True,
                       timeout=60, cwd=d)
    if p.returncode == 3:
        theirs = "ok"
    else:
        m = re.search(r"reading file \S+ at line (\d+): ", p.stderr)
        assert p.returncode == 2 and m, (p.returncode, p.stderr)
        theirs = f"refused {m.group(1)}"
    assert theirs == case.ldirectord, (case.name, p.stderr[-2000:])
    ours = case.verdict == "ok"
    if case.differs is None:
        assert ours == (theirs == "ok"), f"{case.name}: hadirector says {case.verdict}, ldirectord {theirs}"
        if not ours:  # both refuse: at the same line
            line = theirs.split()[1]
            assert any(f"ldirectord.cf:{line}: " in m for m in case.messages), (case.name, case.messages)
    else:
        assert ours != (theirs == "ok"), f"{case.name} says it differs ({case.differs}) but both agree"
