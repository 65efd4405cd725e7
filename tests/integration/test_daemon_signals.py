"""Signals (issue 13 item 3): every signal that would end the process by default either has a
meaning or is handled harmlessly, so none of them kills the node while it holds its group.
SIGUSR1 / SIGUSR2 raise and lower the debug level (heartbeat's meaning) and say so.

Found in issue 13: SIGUSR1 / SIGUSR2 killed the daemon without a word, leaving control.sock
stale and the resources running while the peer took over: two nodes ran the group.
"""

from __future__ import annotations

import os
import re
import signal
import time

from daemon_util import DEADTIME, ctl, declared_dead, no_double_holder, pair_cluster
from hadirector.daemon import signals
from hdtest import wait_until

DEBUG_LINE = "control: status requested"


def _debug_lines(c) -> int:
    return c.log("dir-a").count(DEBUG_LINE)


def test_every_default_fatal_signal_has_a_meaning():
    """signal(7): the signals whose default action is to terminate (or dump core). Each is in the
    table, or documented as fatal."""
    fatal = {"SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
             "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
             "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGSYS",
             "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU"}  # the last four stop, not end: a stopped node is as bad
    known = {signals.name(s) for s in signals.TABLE} | {signals.name(s) for s in signals.FATAL}
    assert fatal <= known, sorted(fatal - known)
    rt = set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
    assert rt <= set(signals.TABLE)
    with open(os.path.join(os.path.dirname(__file__), "../../docs/operations.md")) as f:
        doc = f.read()
    for s in list(signals.TABLE) + list(signals.FATAL):
        n = signals.name(s)
        if not n.startswith("SIGRT"):
            assert n in doc, f"docs/operations.md (Signals, also man 8 hadirector) does not say what {n} does"


def test_signals_do_not_kill_the_holder_and_usr1_usr2_change_the_debug_level(lab, tmp_path):
    c = pair_cluster(lab, tmp_path)
    a = c.start("dir-a")
    c.start("dir-b")
    c.wait_holder("dir-a", timeout=15, stable=0.3)
    c.start_sampling()
    try:
        # at debug level 0 the control request's debug line is not logged
        assert ctl(c, "dir-a", "status").returncode == 0
        time.sleep(0.2)
        assert _debug_lines(c) == 0
        os.kill(a.pid, signal.SIGUSR1)
        wait_until(lambda: "debug level 0 -> 1 (SIGUSR1)" in c.log("dir-a"), 5, 0.05, "the USR1 line")
        assert ctl(c, "dir-a", "status").returncode == 0
        wait_until(lambda: _debug_lines(c) == 1, 5, 0.05, "the debug line at level 1")
        os.kill(a.pid, signal.SIGUSR1)
        wait_until(lambda: "debug level 1 -> 2 (SIGUSR1)" in c.log("dir-a"), 5, 0.05, "the second USR1")
        for want in ("2 -> 1", "1 -> 0", "0 -> 0"):
            os.kill(a.pid, signal.SIGUSR2)
            wait_until(lambda w=want: f"debug level {w} (SIGUSR2)" in c.log("dir-a"), 5, 0.05,
                       f"debug level {want}")
        assert ctl(c, "dir-a", "status").returncode == 0
        time.sleep(0.3)
        assert _debug_lines(c) == 1, "a debug line was logged at level 0"

        # every other signal the table handles, one after the other, to the holder's pid
        sent = [s for s, (kind, _) in signals.TABLE.items() if kind not in (signals.LEAVE,)
                and s not in (signal.SIGUSR1, signal.SIGUSR2)]
        for s in sent:
            os.kill(a.pid, s)
            time.sleep(0.02)
        time.sleep(3 * DEADTIME / 1000)
        assert a.alive(), c.log("dir-a")[-3000:]
        assert ctl(c, "dir-a", "status").returncode == 0
        log = c.log("dir-a")
        for s, (kind, _) in signals.TABLE.items():
            if kind == signals.LOGGED and s in (signal.SIGALRM, signal.SIGPWR, signal.SIGXCPU):
                assert f"{signals.name(s)} received" in log, signals.name(s)
        assert "SIGHUP: log files reopened" in log
        assert re.search(r"(Current thread|Thread) 0x[0-9a-f]+", log), "SIGQUIT wrote no stacks"
        assert not declared_dead(c.log("dir-b"), "dir-a"), c.log("dir-b")[-3000:]
    finally:
        samples = c.stop_sampling()
    no_double_holder(samples)
    assert {s.holders for s in samples} == {("dir-a",)}, "the group moved"

    # SIGINT leaves like SIGTERM: the group is released first, then the peer holds it
    c.start_sampling()
    try:
        os.kill(a.pid, signal.SIGINT)
        a.popen.wait(20)
        assert a.popen.returncode == 0, c.log("dir-a")[-3000:]
        assert not c.hosts["dir-a"].has_address(c.vip)
        c.wait_holder("dir-b", timeout=10)
    finally:
        samples = c.stop_sampling()
    no_double_holder(samples)
