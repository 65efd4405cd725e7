"""Runs the fence devices for the cluster core's Fence(peer) action (cluster/fencing.py decides
when; this module only runs programs) and mails on a failure.

Two kinds of device (config.model.FenceDevice):

* agent: a fence-agents program (Debian fence-agents, /usr/sbin/fence_*). Its arguments go on
  standard input as `argument=value` lines, one per line, as fenced and Pacemaker's fencer pass
  them (fence-agents doc/FenceAgentAPI.md, "What is given to fencing agents"; the library's
  fencing.py `_parse_input_stdin` reads stdin when there are no command-line arguments, and takes
  `port` or its long name `plug`): `action=off|reboot`, the target as `port=` (its name on the
  device: `plugs`, else the node name) and `nodename=` ("fenced always passes the name of the
  node to be fenced via the nodename argument"; agents without it skip it silently), then the
  device's `params`. FenceAgentAPI: off and reboot return 0 when the (off part of the) operation
  was successful, 1 if not.
* stonith: cluster-glue's `stonith -t TYPE {-p PARAMS | -F FILE | name=value...} -T reset|off NODE`
  (stonith(8)), as heartbeat's `stonith` and `stonith_host` lines configure it; heartbeat
  resets (ST_GENERIC_RESET), so `reboot` is `-T reset`. Exit status 0 means done.

The devices that may fence a peer from here are tried in order until one succeeds (Pacemaker
tries a fencing topology's levels in order); a device that runs longer than its `timeout` is
killed with its process group and counts as failed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

from ..checks.alerts import Mail
from ..config.model import Config, FenceDevice, fence_devices_for, program_candidates

OUTPUT_CAP = 400  # characters of a device's output kept for the log and status


def resolve(name: str) -> str | None:
    for p in program_candidates(name):
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def agent_input(dev: FenceDevice, target: str) -> str:
    """The stdin of a fence agent (FenceAgentAPI: name=value lines)."""
    lines = [f"action={dev.action}", f"port={dev.plugs.get(target, target)}", f"nodename={target}"]
    lines += [f"{k}={v}" for k, v in dev.params.items()]
    return "\n".join(lines) + "\n"


def stonith_argv(dev: FenceDevice, target: str, program: str = "stonith") -> list[str]:
    """cluster-glue stonith(8): `-t TYPE`, the parameters, `-T reset|off NODE`."""
    argv = [program, "-t", dev.type]
    if dev.config_file is not None:
        argv += ["-F", dev.config_file]
    elif dev.param_text is not None or not dev.params:
        argv += ["-p", dev.param_text or ""]
    else:
        argv += [f"{k}={v}" for k, v in dev.params.items()]
    return argv + ["-T", "reset" if dev.action == "reboot" else "off", dev.plugs.get(target, target)]


class FenceRunner:
    def __init__(self, config: Config, node: str, log, netns: str | None = None):
        self.config = config
        self.node = node
        self.log = log
        self.netns = netns

    def devices(self, target: str) -> list[FenceDevice]:
        c = self.config.cluster
        return fence_devices_for(c.fencing, self.node, target, c.nodes)

    async def fence(self, target: str) -> tuple[bool, str, str, int]:
        """(ok, detail, device label, ms taken) for one fence of `target`."""
        t0 = time.monotonic()
        details = []
        devs = self.devices(target)
        if not devs:
            return False, "no fence device can fence it from here", "", 0
        for dev in devs:
            ok, detail = await self._run(dev, target)
            if ok:
                return True, detail, dev.label, int((time.monotonic() - t0) * 1000)
            details.append(f"{dev.label}: {detail}")
            self.log.error("node %s: fence device %s failed: %s", target, dev.label, detail)
        return False, "; ".join(details), devs[-1].label, int((time.monotonic() - t0) * 1000)

    async def _run(self, dev: FenceDevice, target: str) -> tuple[bool, str]:
        prog = dev.agent if dev.kind == "agent" else "stonith"
        path = resolve(prog)
        if path is None:
            return False, f"{prog} not found (looked in {', '.join(program_candidates(prog))})"
        if dev.kind == "agent":
            argv, stdin = [path], agent_input(dev, target).encode()
        else:
            argv, stdin = stonith_argv(dev, target, path), b""
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            return False, f"cannot run {path}: {exc.strerror or exc}"
        try:
            out, _ = await asyncio.wait_for(proc.communicate(stdin), dev.timeout / 1000)
        except asyncio.TimeoutError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            return False, f"timed out after {dev.timeout} ms (killed)"
        text = " ".join(out.decode(errors="replace").split())[:OUTPUT_CAP]
        if proc.returncode == 0:
            return True, text or "exit 0"
        return False, f"exit {proc.returncode}" + (f": {text}" if text else "")

    def failure_mail(self, target: str, detail: str, failures: int, retry_ms: int | None) -> Mail | None:
        """The alert for a failed fence (fencing.alerts, else the [balancer]'s emailalert)."""
        f = self.config.cluster.fencing
        alerts = f.alerts if f.alerts is not None and f.alerts.to else None
        if alerts is None and self.config.balancer is not None and self.config.balancer.alerts.to:
            alerts = self.config.balancer.alerts
        if alerts is None:
            return None
        subject = f"[hadirector] {self.node}: fencing of {target} FAILED; its groups are not taken over"
        body = (f"Node {self.node} could not fence node {target} ({failures} failure(s) in a row).\n"
                f"Until a fence succeeds (or {target} is heard again), {self.node} does not take over "
                f"the groups {target} may still run.\n\nDetail: {detail}\n"
                + (f"Next attempt in {retry_ms / 1000:.0f} s.\n" if retry_ms else "")
                + f"\nHost: {socket.gethostname()}\n")
        return Mail(alerts.to, alerts.sender, alerts.smtp, subject, body)
