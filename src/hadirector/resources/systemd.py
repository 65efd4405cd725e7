"""The `systemd` agent: a unit started and stopped with systemctl.

start: `systemctl start UNIT` (waits for the unit's start job, as systemctl does by default);
stop: `systemctl stop UNIT`; monitor: `systemctl is-active UNIT`, which prints the unit's active
state and exits 0 only for "active" (systemctl(1)). "inactive", "failed", "activating",
"deactivating" and friends mean not running. When systemctl cannot reach systemd at all (no
systemd as PID 1, no D-Bus) the operation raises an AgentError saying so, instead of reporting the
unit stopped.
"""

from __future__ import annotations

import logging

from ..config.model import SystemdResource
from .base import Agent, AgentContext, AgentError, Completed, register, run_program

log = logging.getLogger(__name__)

# what `systemctl is-active` prints for a unit that systemd knows but is not running
NOT_ACTIVE_STATES = frozenset({"inactive", "failed", "activating", "deactivating", "reloading",
                               "maintenance", "refreshing", "unknown"})
_NO_SYSTEMD_HINTS = ("has not been booted with systemd", "failed to connect to bus",
                     "system has not been booted", "connection refused", "host is down",
                     "no such file or directory")


def systemd_unreachable(done: Completed) -> bool:
    text = (done.stderr + done.stdout).lower()
    return any(h in text for h in _NO_SYSTEMD_HINTS)


@register
class SystemdAgent(Agent):
    kind = "systemd"

    def __init__(self, model: SystemdResource, ctx: AgentContext):
        super().__init__(model, ctx)
        self.model: SystemdResource = model

    @property
    def name(self) -> str:
        return f"systemd {self.model.unit}"

    async def _systemctl(self, *args: str) -> Completed:
        return await run_program([self.ctx.systemctl, *args, "--", self.model.unit], self.ctx)

    def _fail(self, action: str, done: Completed) -> AgentError:
        if systemd_unreachable(done):
            return AgentError(f"{self.name}: {action}: systemctl cannot reach systemd: {done.brief()}",
                              transient=False, code=done.rc)
        return AgentError(f"{self.name}: {action} exited {done.rc}: {done.brief()}", code=done.rc)

    async def start(self) -> None:
        done = await self._systemctl("start")
        if done.rc != 0:
            raise self._fail("start", done)

    async def stop(self) -> None:
        done = await self._systemctl("stop")
        if done.rc != 0:
            raise self._fail("stop", done)

    async def monitor(self) -> bool:
        done = await self._systemctl("is-active")
        state = done.stdout.strip().splitlines()[-1].strip() if done.stdout.strip() else ""
        if done.rc == 0 and state in ("active", ""):
            return True
        if state in NOT_ACTIVE_STATES and not systemd_unreachable(done):
            return False
        if not state and not systemd_unreachable(done):
            # is-active can exit non-zero silently when it cannot talk to systemd; ask why
            probe = await run_program([self.ctx.systemctl, "is-system-running"], self.ctx)
            if systemd_unreachable(probe):
                raise self._fail("is-active", probe)
        raise self._fail("is-active", done)
