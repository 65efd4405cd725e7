"""ha.cf `respawn USER COMMAND`: run a program as USER, start it again when it exits, stop it when
the daemon stops.

Heartbeat's rules (heartbeat 3, heartbeat/heartbeat.c):
- start_a_child_client: the child gets its own process group (setpgid(0,0)), stdin, stdout and
  stderr on /dev/null, the user's uid, gid and supplementary groups (initgroups), and runs
  `/bin/sh -c "exec COMMAND"`; a command that is not executable is not started at all;
- ManagedChildDied: "If they exit 100 we won't restart them"; nothing is restarted while
  shutting down; a run shorter than 30 s counts as short (shortrcount); heartbeat sleeps 1 s
  before a restart after a short run, and after more than 10 short runs in a row logs "respawning
  too fast" and gives up on the client;
- at shutdown heartbeat signals the client (shutdown_last_client_child: SIGTERM, then SIGKILL).

Where we differ: instead of giving up after ten fast restarts, the pause before a restart grows
(Backoff: 1 s after a short run, doubling per short run in a row, at most 60 s, back to none
after a run of 30 s or more), so a program that fails while, say, its network is missing comes
back on its own. At shutdown the whole process group gets SIGTERM, then SIGKILL after
STOP_GRACE seconds.

Backoff is the pure part (fed `now` in ms); Respawner is the asyncio driver.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import time
from dataclasses import dataclass, field

NO_RESTART = 100  # heartbeat.c ManagedChildDied: "If they exit 100 we won't restart them"
SHORT_RUN = 30_000  # heartbeat.c: minticks = msto_longclock(30000)
FIRST_PAUSE = 1_000  # heartbeat.c start_a_child_client: sleep(1) after a short run
MAX_PAUSE = 60_000
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL at shutdown


@dataclass
class Backoff:
    """When to start a respawned program again. Pure: times are ms."""

    short_runs: int = 0  # short runs in a row

    def after_exit(self, started: int, now: int) -> int:
        """The pause (ms) before the next start, for a run from `started` to `now`."""
        if now - started >= SHORT_RUN:
            self.short_runs = 0
            return 0
        self.short_runs += 1
        return min(MAX_PAUSE, FIRST_PAUSE * 2 ** (self.short_runs - 1))


def argv_for(user: str, command: str, netns: str | None, me: int | None = None) -> tuple[list[str], dict]:
    """The program to exec and the subprocess options, as heartbeat's start_a_child_client:
    `/bin/sh -c "exec COMMAND"` as USER with its groups. Inside a network namespace the switch
    of user is setpriv's (ip netns exec needs root); else the subprocess module's."""
    pw = pwd.getpwnam(user)  # KeyError: no such user
    shell = ["/bin/sh", "-c", f"exec {command}"]
    me = os.geteuid() if me is None else me
    if netns:
        argv = ["ip", "netns", "exec", netns]
        if pw.pw_uid != me:
            argv += ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
        return argv + shell, {}
    if pw.pw_uid == me:
        return shell, {}
    return shell, {"user": pw.pw_uid, "group": pw.pw_gid,
                   "extra_groups": os.getgrouplist(pw.pw_name, pw.pw_gid)}


@dataclass
class Child:
    user: str
    command: str
    pid: int | None = None
    starts: int = 0
    restarts: int = 0
    last_exit: str | None = None  # "exit 1", "signal 9"
    last_exit_at: float | None = None  # wall clock
    state: str = "starting"  # running, waiting (back-off), done (exit 100), failed (cannot start), stopped
    next_start_in_ms: int | None = None
    backoff: Backoff = field(default_factory=Backoff)

    def snapshot(self) -> dict:
        return {"user": self.user, "command": self.command, "pid": self.pid, "state": self.state,
                "starts": self.starts, "restarts": self.restarts, "last_exit": self.last_exit,
                "last_exit_at": self.last_exit_at, "next_start_in_ms": self.next_start_in_ms}


def describe_exit(rc: int) -> str:
    return f"signal {signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else -rc}" \
        if rc < 0 else f"exit {rc}"


class Respawner:
    """Runs every `respawn` line of the configuration (config.model.Respawn)."""

    def __init__(self, respawns, log, netns: str | None = None):
        self.children = [Child(r.user, r.command) for r in respawns]
        self.log = log
        self.netns = netns
        self._tasks: list[asyncio.Task] = []
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False

    def start(self) -> None:
        for c in self.children:
            self._tasks.append(asyncio.get_running_loop().create_task(self._keep(c)))

    def snapshot(self) -> list[dict]:
        return [c.snapshot() for c in self.children]

    async def _keep(self, c: Child) -> None:
        while not self._stopping:
            try:
                argv, kw = argv_for(c.user, c.command, self.netns)
            except KeyError:
                c.state = "failed"
                self.log.error("respawn %s: user %s does not exist: not started", c.command, c.user)
                return
            prog = c.command.split()[0]
            if not os.access(prog, os.X_OK):  # heartbeat.c start_a_child_client: access(F_OK|X_OK)
                c.state = "failed"
                self.log.error("respawn %s: %s is not executable: not started", c.command, prog)
                return
            started = int(time.monotonic() * 1000)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL, start_new_session=True, **kw)
            except OSError as exc:
                c.state = "failed"
                self.log.error("respawn %s: cannot start: %s", c.command, exc.strerror or exc)
                return
            c.pid, c.state = proc.pid, "running"
            c.next_start_in_ms = None
            self._procs[proc.pid] = proc
            if c.starts:
                c.restarts += 1
            c.starts += 1
            self.log.info("respawn %s: started as %s (pid %d)", c.command, c.user, proc.pid)
            rc = await proc.wait()
            self._procs.pop(proc.pid, None)
            c.pid = None
            c.last_exit, c.last_exit_at = describe_exit(rc), time.time()
            if self._stopping:
                break
            if rc == NO_RESTART:
                c.state = "done"
                self.log.warning("respawn %s: exited with 100: not restarted (heartbeat's rule)", c.command)
                return
            pause = c.backoff.after_exit(started, int(time.monotonic() * 1000))
            c.state, c.next_start_in_ms = "waiting", pause
            self.log.error("respawn %s: %s (pid %d) after %.1f s; restarting%s", c.command, c.last_exit,
                           proc.pid, time.monotonic() - started / 1000,
                           f" in {pause / 1000:.0f} s ({c.backoff.short_runs} short runs in a row)" if pause else "")
            if pause:
                await asyncio.sleep(pause / 1000)
        c.state = "stopped"

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM every child's process group, SIGKILL after `grace` seconds; wait for them."""
        self._stopping = True
        groups = list(self._procs)
        for pid in groups:
            _killpg(pid, signal.SIGTERM)
        procs = list(self._procs.values())
        if procs:
            _, late = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=grace)
            for pid, p in list(self._procs.items()):
                if p.returncode is None:
                    self.log.warning("respawn: pid %d did not stop within %.0f s of SIGTERM: SIGKILL", pid, grace)
                    _killpg(pid, signal.SIGKILL)
            for p in procs:
                await p.wait()
        for pid in groups:  # the group may outlive its leader
            _killpg(pid, signal.SIGKILL)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in self.children:
            c.state = "stopped" if c.state in ("running", "waiting", "starting") else c.state


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
