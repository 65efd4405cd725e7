"""ha.cf `realtime` / `rtprio` (native `[cluster.realtime]`): the daemon made a soft realtime
process, as heartbeat 3 makes its own, so that its heartbeats go out on time on a loaded machine
and none of its memory is paged out.

What heartbeat 3.0.6 does: master_control_process (heartbeat.c) calls cluster-glue's
cl_make_realtime(-1, hb_realtime_prio, 32, memreserve) (lib/clplumbing/realtime.c), which
- grows the stack and heap first (cl_stack_hogger 32 KiB, cl_malloc_hogger `memreserve` KiB), so
  that they are mapped when it locks them;
- takes the policy DEFAULT_REALTIME_POLICY, SCHED_RR (clplumbing/realtime.h), and the priority
  `rtprio`, or without it (hb_realtime_prio = -1) sched_get_priority_min(SCHED_RR), which is 1;
  sched_setscheduler(0, ...); a failure is logged (cl_perror) and it carries on;
- raises RLIMIT_MEMLOCK to infinity, or the soft limit to the hard one; when the limit is still
  finite and what it grew is half of it or more, it logs "Cannot lock ourselves into memory:
  System limits on locked-in memory are too small." and locks nothing;
- mlockall(MCL_CURRENT | MCL_FUTURE); a failure is logged.
Its children (read, write, FIFO processes) call it with rtprio - 1; every process it forks to run
something else calls hb_setup_child, whose cl_make_normaltime puts it back to SCHED_OTHER and
unlocks it. `realtime off` (config.c set_realtime -> cl_disable_realtime) turns every call into
"Request to set pid N to realtime ignored.". Run here (ha.cf without a realtime line), heartbeat's
master control process and its children show SCHED_RR priority 1; with `rtprio 50`, 50 and 49.

What `make_realtime` does, once, when the daemon starts (daemon/node.py, before the links open):
- the policy and priority on every thread the process has then (os.sched_setscheduler acts on one
  thread; they are listed in /proc/self/task), with SCHED_RESET_ON_FORK: a process the daemon
  starts (a resource script, a check command, nft, conntrackd) and a thread started later (asyncio's
  executor) begin at SCHED_OTHER, which is what hb_setup_child does for heartbeat's children. The
  heartbeats, timers and control socket are all on the loop's thread, which keeps the priority.
- mlockall(MCL_CURRENT | MCL_FUTURE) through libc: what is mapped now is faulted in and locked,
  what is mapped later is locked as it is mapped, so no pre-growing is needed (`memreserve` stays
  unused). Without CAP_IPC_LOCK the kernel holds the process to RLIMIT_MEMLOCK and, with
  MCL_FUTURE, an allocation past it would fail later, so the limit is raised first as
  cl_make_realtime raises it, and nothing is locked when what is mapped already is half of it or
  more (cl_make_realtime's threshold).
A step that fails is a WARNING naming the call and why it failed; the daemon carries on at normal
priority, or unlocked. Nothing here stops it. The outcome (`RealtimeState`) is in `hadirector
status`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
from dataclasses import asdict, dataclass, field

MCL_CURRENT, MCL_FUTURE = 1, 2  # <sys/mman.h> on Linux (asm-generic/mman-common.h)
CAP_IPC_LOCK, CAP_SYS_NICE = 14, 23  # <linux/capability.h>
POLICIES = {"rr": os.SCHED_RR, "fifo": os.SCHED_FIFO}
POLICY_NAMES = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_RR: "SCHED_RR", os.SCHED_FIFO: "SCHED_FIFO"}


@dataclass
class RealtimeState:
    """What was asked for and what took effect (the `realtime` key of the status reply)."""

    enabled: bool  # [cluster.realtime] enabled
    policy: str | None = None  # "SCHED_RR" / "SCHED_FIFO" once in effect, else None
    priority: int | None = None
    threads: int = 0  # threads given the policy
    lock_memory: bool = False  # asked to lock
    locked: bool = False  # mlockall succeeded
    locked_kib: int | None = None  # VmLck right after it
    problems: list[str] = field(default_factory=list)  # each failed step, in words

    def snapshot(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- the system calls
# (module functions, so that the tests can stand in for the kernel's refusals)

def _threads() -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir("/proc/self/task"))
    except OSError:
        return [os.getpid()]


def _setscheduler(tid: int, policy: int, priority: int) -> None:
    os.sched_setscheduler(tid, policy | os.SCHED_RESET_ON_FORK, os.sched_param(priority))


def _mlockall(flags: int) -> int:
    """0, or the errno of a failed mlockall(2)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.mlockall(ctypes.c_int(flags)) == 0 else ctypes.get_errno()


def _status() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def _capable(cap: int, status: dict[str, str]) -> bool:
    try:
        return bool(int(status["CapEff"], 16) >> cap & 1)
    except (KeyError, ValueError):
        return os.geteuid() == 0


def _kib(status: dict[str, str], key: str) -> int | None:
    try:
        return int(status[key].split()[0])
    except (KeyError, ValueError, IndexError):
        return None


def _limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else f"{value // 1024} KiB"


# ----------------------------------------------------------------------------- the steps

def _schedule(rt, state: RealtimeState) -> str | None:
    """The policy on every thread; None, or why it could not be set."""
    policy = POLICIES[rt.policy]
    name = POLICY_NAMES[policy]
    tids = _threads()
    me = os.getpid()
    tids.sort(key=lambda t: t != me)  # the main (loop) thread first: if it is refused, none is changed
    done = 0
    for tid in tids:
        try:
            _setscheduler(tid, policy, rt.priority)
        except OSError as exc:
            if exc.errno == errno.ESRCH:  # the thread ended meanwhile
                continue
            if done:  # the loop's thread has it; one other thread does not
                state.policy, state.priority, state.threads = name, rt.priority, done
                return (f"sched_setscheduler({name}, priority {rt.priority}) of thread {tid}: {exc.strerror}; "
                        f"{done} thread(s) run at it, that one at normal priority")
            return f"sched_setscheduler({name}, priority {rt.priority}): {exc.strerror} ({_why_sched(exc, rt)})"
        done += 1
    state.policy, state.priority, state.threads = name, rt.priority, done
    return None


def _why_sched(exc: OSError, rt) -> str:
    if exc.errno != errno.EPERM:
        return "the kernel refused the policy"
    soft = resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    if not _capable(CAP_SYS_NICE, _status()) and soft != resource.RLIM_INFINITY and soft < rt.priority:
        return (f"no CAP_SYS_NICE, and RLIMIT_RTPRIO is {soft}, below {rt.priority}; under systemd add "
                "CAP_SYS_NICE to CapabilityBoundingSet or set LimitRTPRIO")
    return ("refused although CAP_SYS_NICE or RLIMIT_RTPRIO allows it: a seccomp filter (systemd's "
            "RestrictRealtime=yes) or a cgroup without realtime time (cpu.rt_runtime_us 0)")


def _lock(state: RealtimeState) -> str | None:
    """mlockall(MCL_CURRENT | MCL_FUTURE) as cl_make_realtime does it; None, or why not."""
    status = _status()
    if not _capable(CAP_IPC_LOCK, status):
        # cl_make_realtime: try to remove the limit, else take what the hard limit allows
        _soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        for want in ((resource.RLIM_INFINITY, resource.RLIM_INFINITY), (hard, hard)):
            try:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, want)
                break
            except (OSError, ValueError):
                continue
        soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
        mapped = _kib(status, "VmSize")
        if soft != resource.RLIM_INFINITY and mapped is not None and mapped * 1024 >= soft // 2:
            # cl_make_realtime's THRESHOLD(lim): what is to be locked must stay below half the limit
            return (f"RLIMIT_MEMLOCK is {_limit(soft)} and the daemon maps {mapped} KiB already: without "
                    "CAP_IPC_LOCK locking everything would make later allocations fail at that limit; "
                    "under systemd add CAP_IPC_LOCK to CapabilityBoundingSet or set LimitMEMLOCK=infinity")
    err = _mlockall(MCL_CURRENT | MCL_FUTURE)
    if err:
        hint = {errno.ENOMEM: "more is mapped than RLIMIT_MEMLOCK allows, and no CAP_IPC_LOCK",
                errno.EPERM: "no CAP_IPC_LOCK and RLIMIT_MEMLOCK is 0, or a seccomp filter",
                errno.EAGAIN: "some of the memory could not be locked"}.get(err, "the kernel refused it")
        return (f"mlockall(MCL_CURRENT|MCL_FUTURE): {os.strerror(err)} ({hint}; RLIMIT_MEMLOCK "
                f"{_limit(resource.getrlimit(resource.RLIMIT_MEMLOCK)[0])})")
    state.locked = True
    state.locked_kib = _kib(_status(), "VmLck")
    return None


def make_realtime(rt, log, node: str) -> RealtimeState:
    """Apply `rt` (model.Realtime) to this process and log what took effect. Never raises for a
    refusal of the kernel: each one is a WARNING, and the daemon goes on without it."""
    state = RealtimeState(enabled=rt.enabled, lock_memory=rt.enabled and rt.lock_memory)
    if not rt.enabled:
        log.info("node %s: realtime off: normal scheduling, memory not locked", node)
        return state
    why = _schedule(rt, state)
    if why:
        state.problems.append(why)
        if state.policy:
            log.warning("node %s: realtime: %s", node, why)
        else:
            log.warning("node %s: realtime: cannot run at %s priority %d: %s; running at normal priority",
                        node, POLICY_NAMES[POLICIES[rt.policy]], rt.priority, why)
    if rt.lock_memory:
        why = _lock(state)
        if why:
            state.problems.append(why)
            log.warning("node %s: realtime: cannot lock the daemon's memory: %s; it stays unlocked", node, why)
    done = []
    if state.policy:
        done.append(f"{state.policy} priority {state.priority} on {state.threads} thread(s) (processes and "
                    "threads it starts run at normal priority)")
    if state.locked:
        done.append(f"memory locked (mlockall, {state.locked_kib or 0} KiB now)")
    elif not rt.lock_memory:
        done.append("memory not locked (lock_memory = false)")
    if done:
        log.info("node %s: realtime: %s", node, ", ".join(done))
    return state
