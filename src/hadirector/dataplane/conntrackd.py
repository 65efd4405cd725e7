"""conntrackd as our child: the NAT connections' state on every director (the driver of
config/sync.py's plan; the file is dataplane/conntrackd_conf.py's).

How it works. The balancer supervisor (daemon/balancer.py) starts one `Conntrackd` with the
daemon on every director, holder or backup (a backup must receive), and stops it at shutdown.
The daemon writes conntrackd.conf, its UNIX socket and lock file in our state directory, and runs
`conntrackd -C FILE` in the foreground as its child, which dies with us (PR_SET_PDEATHSIG: a
director that loses its daemon must not keep sending a stale table). A lock file left by a
conntrackd that died is removed first, as the `backup` branch of conntrack-tools'
doc/sync/primary-backup.sh does when `conntrackd -s` gets no answer.

The two transitions are that script's, run as client commands against our socket:
- `primary()` (this node takes the balancer, before the VIP is announced: resources/balancer.py
  `prepare`): `-c` commit the external cache into the kernel, `-f` flush the caches, `-R`
  resync the internal cache with the kernel, `-B` bulk-send it to the others;
- `backup()` (this node gave the balancer up): `-t` shorten the kernel's timers of what is left
  (conntrackd.conf(5) PurgeTimeout), `-n` ask the new primary for a full resync.
A failed step is logged and the next one run, as the script does; the failover goes on (the
connections of a failed commit are lost, not the service).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import time

from ..config.machine import SBIN_DIRS
from ..config.sync import ConntrackdPlan
from ..errors import HadirectorError
from .conntrackd_conf import ConntrackdConfError, Paths, render

PROGRAM = "conntrackd"
PR_SET_PDEATHSIG = 1
START_TIMEOUT = 10.0  # the socket must answer within this
CLIENT_TIMEOUT = 30.0  # one client command (a commit of a large table takes a while)


class ConntrackdError(HadirectorError, RuntimeError):
    """conntrackd could not be started (missing, refused its file, did not answer)."""


def find_program(name: str = PROGRAM) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN_DIRS)
    return shutil.which(name, path=path)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Conntrackd:
    def __init__(self, plan: ConntrackdPlan, state_dir: str, *, netns: str | None = None,
                 log: logging.Logger | None = None, program: str | None = None) -> None:
        self.plan = plan
        self.netns = netns
        self.log = log or logging.getLogger(__name__)
        self.program = program or find_program()
        d = os.path.abspath(state_dir)
        self.paths = Paths(conf=os.path.join(d, "conntrackd.conf"), socket=os.path.join(d, "conntrackd.ctl"),
                           lock=os.path.join(d, "conntrackd.lock"), log=os.path.join(d, "conntrackd.log"))
        self.proc: asyncio.subprocess.Process | None = None
        self.role: str = "backup"
        self.last: dict[str, dict] = {}  # transition -> {"at", "ms", "failed": [...]}

    # ------------------------------------------------------------------ the process

    def _argv(self, *args: str) -> list[str]:
        argv = [self.program, "-C", self.paths.conf, *args]
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    async def _local(self) -> tuple[list[str], str | None]:
        from ..net import netlink
        addrs = await netlink.addresses(self.netns)
        link = await netlink.link_by_name(self.plan.interface, self.netns)
        if link is None:
            raise ConntrackdError(f"conntrackd: sync interface {self.plan.interface} does not exist")
        v4 = [a.address for a in addrs if a.index == link.index and ":" not in a.address]
        return [a.address for a in addrs], (v4[0] if v4 else None)

    async def start(self) -> None:
        if self.program is None:
            raise ConntrackdError("conntrackd is not installed (Debian package conntrackd); NAT "
                                  "connections will not survive a failover")
        local, ifaddr = await self._local()
        try:
            text = render(self.plan, local, self.paths, interface_address=ifaddr)
        except ConntrackdConfError as exc:
            raise ConntrackdError(str(exc)) from None
        with open(self.paths.conf, "w") as f:
            f.write(text)
        if os.path.exists(self.paths.lock):
            # our state directory is ours alone (statedir.lock): the lock is left by a conntrackd
            # that died with an earlier run (primary-backup.sh: "conntrackd was not cleanly stopped")
            if await self._client("-s", quiet=True) == 0:
                await self._client("-k", quiet=True)
                await asyncio.sleep(0.2)
            self.log.warning("conntrackd: removed %s left by an earlier run", self.paths.lock)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.paths.lock)
        out = open(self.paths.log + ".out", "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self._argv(), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                preexec_fn=_die_with_parent, start_new_session=True)
        finally:
            out.close()
        t_end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < t_end:
            if self.proc.returncode is not None:
                raise ConntrackdError(f"conntrackd exited with {self.proc.returncode} at start: "
                                      f"{self._tail()}")
            if os.path.exists(self.paths.socket) and await self._client("-s", quiet=True) == 0:
                self.log.info("conntrackd: running (pid %d, FTFW over %s, %s)", self.proc.pid,
                              self.plan.interface, self.paths.conf)
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise ConntrackdError(f"conntrackd did not answer on {self.paths.socket} within "
                              f"{START_TIMEOUT:.0f} s: {self._tail()}")

    def _tail(self) -> str:
        text = ""
        for p in (self.paths.log + ".out", self.paths.log):
            with contextlib.suppress(OSError):
                with open(p, errors="replace") as f:
                    text += f.read()[-600:]
        return " ".join(text.split()[-60:]) or "(no output)"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()  # conntrackd removes its socket and lock file on SIGTERM
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        self.log.info("conntrackd: stopped")

    # ------------------------------------------------------------------ client commands

    async def _client(self, *args: str, quiet: bool = False) -> int:
        try:
            p = await asyncio.create_subprocess_exec(*self._argv(*args), stdin=asyncio.subprocess.DEVNULL,
                                                     stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(p.communicate(), CLIENT_TIMEOUT)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            await p.wait()
            if not quiet:
                self.log.error("conntrackd %s: no answer within %.0f s", " ".join(args), CLIENT_TIMEOUT)
            return -1
        except OSError as exc:
            if not quiet:
                self.log.error("conntrackd %s: %s", " ".join(args), exc)
            return -1
        if p.returncode != 0 and not quiet:
            self.log.error("conntrackd %s failed (exit %d): %s", " ".join(args), p.returncode,
                           out.decode(errors="replace").strip()[-300:])
        return p.returncode

    async def _steps(self, name: str, steps: list[tuple[str, ...]]) -> bool:
        t0 = time.monotonic()
        failed = [" ".join(s) for s in steps if await self._client(*s) != 0]
        ms = round((time.monotonic() - t0) * 1000)
        self.last[name] = {"at": time.time(), "ms": ms, "failed": failed}
        self.role = name
        if failed:
            self.log.error("conntrackd: %s: %s failed (%d ms)", name, ", ".join(failed), ms)
        else:
            self.log.info("conntrackd: %s: %s done in %d ms", name,
                          " ".join(a for s in steps for a in s), ms)
        return not failed

    async def primary(self) -> bool:
        """Take over: commit the other directors' connections into our kernel, then become the
        source (primary-backup.sh `primary`: -c, -f, -R, -B)."""
        if not self.running:
            self.log.error("conntrackd: not running; the open connections are not committed")
            return False
        return await self._steps("primary", [("-c",), ("-f",), ("-R",), ("-B",)])

    async def backup(self) -> bool:
        """Give up: let what is left in our kernel expire, ask the new primary for its table
        (primary-backup.sh `backup`: -t, -n)."""
        if not self.running:
            return False
        return await self._steps("backup", [("-t",), ("-n",)])

    def status(self) -> dict:
        return {"running": self.running, "pid": self.proc.pid if self.running else None,
                "role": self.role, "interface": self.plan.interface, "conf": self.paths.conf,
                "last": self.last}
