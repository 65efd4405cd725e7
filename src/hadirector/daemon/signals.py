"""What each signal does to the daemon: one table, installed on its loop by `install()`, listed
in docs/daemon.md. Every signal whose default action ends the process (signal(7)) is either here
or in `FATAL` with what happens then.

heartbeat's own table (hb_signal.c hb_signal_set_common and
hb_signal_set_master_control_process): SIGTERM shuts down; SIGHUP re-reads the configuration;
SIGUSR1 / SIGUSR2 raise / lower the debug level (__hb_signal_debug_action) and log "debug now
set to N"; SIGALRM is logged as unexpected; SIGPIPE, SIGTSTP, SIGTTOU, SIGTTIN and SIGINT are
ignored. We keep those meanings, with two differences: SIGINT leaves like SIGTERM (the daemon
runs in the foreground, and Ctrl-C there must not leave groups running), and the signals
heartbeat leaves at their default (SIGQUIT, SIGPWR, SIGIO, profiling timers, real-time ones)
are handled so that none of them kills the node while it holds resources: a node killed that
way keeps its VIPs while its peer takes them over after deadtime.
"""

from __future__ import annotations

import faulthandler
import signal
from typing import Callable

S = signal.Signals

LEAVE, RELOAD, DEBUG_UP, DEBUG_DOWN, STACKS, LOGGED, IGNORED = (
    "leave", "reload", "debug+", "debug-", "stacks", "logged", "ignored")

# signal -> (action, what the operator reads in docs/daemon.md)
TABLE: dict[int, tuple[str, str]] = {
    S.SIGTERM: (LEAVE, "leave the cluster cleanly: stop every group this node runs, tell the peers, exit 0"),
    S.SIGINT: (LEAVE, "as SIGTERM (heartbeat ignores it; a daemon in the foreground must not leave "
                      "its groups running on Ctrl-C)"),
    S.SIGHUP: (RELOAD, "reopen logfile and debugfile, then re-read the configuration and apply the difference"),
    S.SIGUSR1: (DEBUG_UP, "raise the debug level by one (heartbeat); logged"),
    S.SIGUSR2: (DEBUG_DOWN, "lower the debug level by one, not below 0 (heartbeat); logged"),
    S.SIGQUIT: (STACKS, "write every thread's Python stack to standard error (the journal under "
                        "systemd) and keep running; works while the loop is stuck"),
    S.SIGALRM: (LOGGED, "logged as unexpected (heartbeat: \"Unexpected alarm\"), nothing else"),
    S.SIGPWR: (LOGGED, "logged; the UPS daemon's shutdown stops us with SIGTERM"),
    S.SIGIO: (LOGGED, "logged, nothing else (SIGPOLL)"),
    S.SIGPROF: (LOGGED, "logged, nothing else"),
    S.SIGVTALRM: (LOGGED, "logged, nothing else"),
    S.SIGSTKFLT: (LOGGED, "logged, nothing else"),
    S.SIGXCPU: (LOGGED, "logged: the CPU time limit (RLIMIT_CPU) is near; its hard limit kills"),
    S.SIGXFSZ: (LOGGED, "logged: a log file reached the file size limit (RLIMIT_FSIZE); the write fails"),
    S.SIGPIPE: (IGNORED, "ignored (a write to a closed socket fails with EPIPE instead)"),
    S.SIGTSTP: (IGNORED, "ignored, as heartbeat does: a stopped node keeps its resources while its "
                         "peer takes them over"),
    S.SIGTTIN: (IGNORED, "ignored (heartbeat)"),
    S.SIGTTOU: (IGNORED, "ignored (heartbeat)"),
}
for _n in range(signal.SIGRTMIN, signal.SIGRTMAX + 1):
    TABLE[_n] = (LOGGED, "logged, nothing else (real-time signals)")

# default-fatal signals that cannot be caught, or that mean the process is already broken
FATAL: dict[int, str] = {
    S.SIGKILL: "cannot be caught: the peers take the groups over after deadtime; the next start "
               "removes what was left (a VIP), as after a power loss",
    S.SIGSTOP: "cannot be caught: a stopped node is silent, so its peer takes its groups over "
               "after deadtime; when continued it notices the stall and, seeing the peer "
               "holding the groups, gives them up (split brain rule)",
    S.SIGSEGV: "a crash: the stack is written to standard error (faulthandler), then as SIGKILL",
    S.SIGBUS: "a crash, as SIGSEGV",
    S.SIGILL: "a crash, as SIGSEGV",
    S.SIGFPE: "a crash, as SIGSEGV",
    S.SIGABRT: "a crash, as SIGSEGV (systemd's watchdog sends it to a hung daemon)",
    S.SIGSYS: "a crash, as SIGSEGV (a system call the sandbox forbids)",
    S.SIGTRAP: "a crash, as SIGSEGV",
}


def name(sig: int) -> str:
    try:
        return S(sig).name
    except ValueError:
        return f"SIGRTMIN+{sig - signal.SIGRTMIN}" if signal.SIGRTMIN <= sig <= signal.SIGRTMAX else str(sig)


def install(loop, actions: dict[str, Callable[[int], None]]) -> None:
    """Install TABLE on `loop`: `actions[kind](signum)` for each kind but STACKS and IGNORED."""
    for sig, (kind, _why) in TABLE.items():
        if kind == IGNORED:
            signal.signal(sig, signal.SIG_IGN)
        elif kind == STACKS:
            # a C-level handler: it writes even when the event loop is stuck (the reason to ask)
            faulthandler.register(sig, all_threads=True, chain=False)
        else:
            loop.add_signal_handler(sig, actions[kind], sig)


def uninstall(loop) -> None:
    for sig, (kind, _why) in TABLE.items():
        if kind == STACKS:
            faulthandler.unregister(sig)
        elif kind != IGNORED:
            loop.remove_signal_handler(sig)
