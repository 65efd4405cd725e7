"""daemon/realtime.py with the kernel stood in for: what is asked of it, and what a refusal gives
(a WARNING naming the call and the cause, a state that says so, never an exception). The real
kernel's answers are in tests/integration/test_realtime_running.py."""

from __future__ import annotations

import errno
import logging
import os
import resource

import pytest

from hadirector.config.model import Realtime
from hadirector.daemon import realtime as rtmod
from hadirector.render.safety import realtime_line


class Kernel:
    """Records the calls; refuses what it is told to."""

    def __init__(self, monkeypatch, threads=(100,), sched_err=None, lock_err=0, caps=(14, 23),
                 vmsize_kib=60_000, vmlck_kib=59_000, memlock=(8 << 20, 8 << 20)):
        self.calls: list[tuple] = []
        self.sched_err, self.lock_err = sched_err, lock_err
        self.memlock = list(memlock)
        cap = sum(1 << c for c in caps)
        self.status = {"CapEff": f"{cap:016x}", "VmSize": f"{vmsize_kib} kB", "VmLck": f"{vmlck_kib} kB"}
        monkeypatch.setattr(rtmod, "_threads", lambda: list(threads))
        monkeypatch.setattr(rtmod, "_setscheduler", self.setscheduler)
        monkeypatch.setattr(rtmod, "_mlockall", self.mlockall)
        monkeypatch.setattr(rtmod, "_status", lambda: dict(self.status))
        monkeypatch.setattr(os, "getpid", lambda: threads[0])
        monkeypatch.setattr(resource, "getrlimit", self.getrlimit)
        monkeypatch.setattr(resource, "setrlimit", self.setrlimit)

    def setscheduler(self, tid, policy, prio):
        self.calls.append(("sched", tid, policy, prio))
        err = self.sched_err(tid) if callable(self.sched_err) else self.sched_err
        if err:
            raise OSError(err, os.strerror(err))

    def mlockall(self, flags):
        self.calls.append(("mlockall", flags))
        return self.lock_err

    def getrlimit(self, which):
        return (0, 0) if which == resource.RLIMIT_RTPRIO else tuple(self.memlock)

    def setrlimit(self, which, value):
        self.calls.append(("setrlimit", which, value))
        def big(n):
            return float("inf") if n == resource.RLIM_INFINITY else n
        if big(value[1]) > big(self.memlock[1]):
            raise ValueError("not allowed to raise maximum limit")
        self.memlock = list(value)


def run(rt: Realtime, caplog) -> rtmod.RealtimeState:
    caplog.set_level(logging.INFO)
    return rtmod.make_realtime(rt, logging.getLogger("t"), "alpha")


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_heartbeats_defaults_ask_for_sched_rr_1_and_mlockall(monkeypatch, caplog):
    k = Kernel(monkeypatch, threads=(100, 7))  # the main thread (pid 100) is done first
    st = run(Realtime(), caplog)
    assert k.calls == [("sched", 100, os.SCHED_RR, 1), ("sched", 7, os.SCHED_RR, 1), ("mlockall", 3)]
    assert (st.policy, st.priority, st.threads, st.locked, st.locked_kib, st.problems) == (
        "SCHED_RR", 1, 2, True, 59_000, [])
    assert not warnings(caplog)
    assert ("node alpha: realtime: SCHED_RR priority 1 on 2 thread(s) (processes and threads it starts run at "
            "normal priority), memory locked (mlockall, 59000 KiB now)") in caplog.messages
    assert realtime_line(st.snapshot()) == "realtime: SCHED_RR priority 1, memory locked (59000 KiB at start)"


def test_reset_on_fork_is_asked_for(monkeypatch):
    seen = []
    monkeypatch.setattr(os, "sched_setscheduler", lambda tid, pol, param: seen.append((tid, pol, param.sched_priority)))
    rtmod._setscheduler(5, os.SCHED_FIFO, 9)
    assert seen == [(5, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, 9)]


def test_off_touches_nothing(monkeypatch, caplog):
    k = Kernel(monkeypatch)
    st = run(Realtime(enabled=False, priority=50), caplog)
    assert k.calls == [] and st.policy is None and not st.locked and not st.lock_memory
    assert caplog.messages == ["node alpha: realtime off: normal scheduling, memory not locked"]
    assert realtime_line(st.snapshot()) == "realtime: off (normal scheduling, memory not locked)"


def test_fifo_without_locking(monkeypatch, caplog):
    k = Kernel(monkeypatch)
    st = run(Realtime(policy="fifo", priority=40, lock_memory=False), caplog)
    assert k.calls == [("sched", 100, os.SCHED_FIFO, 40)]
    assert (st.policy, st.priority, st.locked) == ("SCHED_FIFO", 40, False)
    assert realtime_line(st.snapshot()) == "realtime: SCHED_FIFO priority 40, memory not locked (lock_memory = false)"


def test_eperm_without_cap_sys_nice_warns_and_goes_on(monkeypatch, caplog):
    k = Kernel(monkeypatch, threads=(100, 7), sched_err=errno.EPERM, caps=(14,))
    st = run(Realtime(), caplog)
    assert [c[:2] for c in k.calls] == [("sched", 100), ("mlockall", 3)]  # refused at the first thread: no more tried
    assert st.policy is None and st.locked
    assert warnings(caplog) == [
        "node alpha: realtime: cannot run at SCHED_RR priority 1: sched_setscheduler(SCHED_RR, priority 1): "
        "Operation not permitted (no CAP_SYS_NICE, and RLIMIT_RTPRIO is 0, below 1; under systemd add "
        "CAP_SYS_NICE to CapabilityBoundingSet or set LimitRTPRIO); running at normal priority"]
    assert realtime_line(st.snapshot()).startswith("realtime: NOT in effect (normal scheduling), memory locked (")


def test_eperm_with_cap_sys_nice_names_seccomp_or_the_cgroup(monkeypatch, caplog):
    Kernel(monkeypatch, sched_err=errno.EPERM)
    st = run(Realtime(), caplog)
    assert "refused although CAP_SYS_NICE or RLIMIT_RTPRIO allows it: a seccomp filter (systemd's " \
           "RestrictRealtime=yes) or a cgroup without realtime time (cpu.rt_runtime_us 0)" in st.problems[0]


def test_a_thread_that_ended_is_skipped(monkeypatch, caplog):
    Kernel(monkeypatch, threads=(100, 7, 8), sched_err=lambda tid: errno.ESRCH if tid == 7 else 0)
    st = run(Realtime(), caplog)
    assert (st.policy, st.threads, st.problems) == ("SCHED_RR", 2, [])


def test_a_later_thread_refused_is_reported(monkeypatch, caplog):
    Kernel(monkeypatch, threads=(100, 7), sched_err=lambda tid: errno.EPERM if tid == 7 else 0)
    st = run(Realtime(), caplog)
    assert (st.policy, st.threads) == ("SCHED_RR", 1)  # the loop's thread (the main one) has it
    assert warnings(caplog) == ["node alpha: realtime: sched_setscheduler(SCHED_RR, priority 1) of thread 7: "
                                "Operation not permitted; 1 thread(s) run at it, that one at normal priority"]


def test_without_cap_ipc_lock_a_small_memlock_limit_locks_nothing(monkeypatch, caplog):
    # cl_make_realtime: raise RLIMIT_MEMLOCK (to infinity, else soft = hard); still below twice what
    # is mapped: refuse, since MCL_FUTURE would make later allocations fail at the limit
    k = Kernel(monkeypatch, caps=(23,), memlock=(64 << 10, 8 << 20))
    st = run(Realtime(), caplog)
    inf = resource.RLIM_INFINITY
    assert [c for c in k.calls if c[0] != "sched"] == [
        ("setrlimit", resource.RLIMIT_MEMLOCK, (inf, inf)), ("setrlimit", resource.RLIMIT_MEMLOCK, (8 << 20, 8 << 20))]
    assert st.policy == "SCHED_RR" and not st.locked
    assert warnings(caplog) == [
        "node alpha: realtime: cannot lock the daemon's memory: RLIMIT_MEMLOCK is 8192 KiB and the daemon maps "
        "60000 KiB already: without CAP_IPC_LOCK locking everything would make later allocations fail at that "
        "limit; under systemd add CAP_IPC_LOCK to CapabilityBoundingSet or set LimitMEMLOCK=infinity; it stays "
        "unlocked"]
    assert realtime_line(st.snapshot()).startswith("realtime: SCHED_RR priority 1, memory NOT locked; RLIMIT_MEMLOCK")


def test_without_cap_ipc_lock_a_large_limit_is_used(monkeypatch, caplog):
    k = Kernel(monkeypatch, caps=(23,), memlock=(1 << 30, 1 << 30))
    st = run(Realtime(), caplog)
    assert ("mlockall", 3) in k.calls and st.locked


def test_mlockall_refused_warns(monkeypatch, caplog):
    Kernel(monkeypatch, lock_err=errno.ENOMEM)
    st = run(Realtime(), caplog)
    assert st.policy == "SCHED_RR" and not st.locked
    assert warnings(caplog) == [
        "node alpha: realtime: cannot lock the daemon's memory: mlockall(MCL_CURRENT|MCL_FUTURE): Cannot allocate "
        "memory (more is mapped than RLIMIT_MEMLOCK allows, and no CAP_IPC_LOCK; RLIMIT_MEMLOCK 8192 KiB); it "
        "stays unlocked"]


@pytest.mark.parametrize("flags", [rtmod.MCL_CURRENT | rtmod.MCL_FUTURE])
def test_mcl_values_are_linuxs(flags):
    assert (rtmod.MCL_CURRENT, rtmod.MCL_FUTURE, flags) == (1, 2, 3)  # asm-generic/mman-common.h
