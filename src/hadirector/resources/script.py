"""The `script` agent: a heartbeat resource script or an LSB init script.

This follows heartbeat's ResourceManager (installed as /usr/share/heartbeat/ResourceManager;
source heartbeat/lib/ResourceManager.in):

- lookup (scriptpath): the first executable file named after the resource in HA_RESOURCEDIR
  (/etc/ha.d/resource.d), then INITDIR (/etc/init.d); the directories come from
  AgentContext.resource_dirs so tests can use their own;
- arguments (resource2arg): `name::a::b` runs `name a b start`, i.e. the `::` arguments come before
  the action (doscript: `$spath $arg "$2"`). Each argument is passed as one word; heartbeat's shell
  would also split an argument at spaces;
- start/stop success is exit code 0 (LSB); any other code fails, named by its LSB meaning;
- status (we_own_resource) looks only at the text the script prints, not its exit code:
  `*[Nn][Oo][Tt]\\ *[Rr]unning*` means stopped, else `*[Rr]unning*|*OK*` means running, anything
  else means stopped;
- acquire (acquireresourcegroup) does not call `start` when status already says running;
- release (giveupresourcegroup): when `stop` fails but status says the resource is stopped, the
  script is "probably not LSB-compliant" and the stop counts as done (heartbeat warns and goes on).

Where heartbeat has no rule, we add one: when status prints nothing at all, monitor goes by the LSB
status exit code (0 running, anything else not running). Heartbeat never monitored, so a script
whose status is silent only cost a redundant `start` at acquire time (we do the same); here it
would otherwise fail every monitor. Output that matches neither pattern still means stopped.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from ..config.model import ScriptResource
from .base import Agent, AgentContext, AgentError, Completed, register, run_program

log = logging.getLogger(__name__)

# LSB init script actions (LSB core, "Init Script Actions"): exit codes of start/stop/...
LSB_EXIT = {0: "success", 1: "generic or unspecified error", 2: "invalid or excess arguments",
            3: "unimplemented feature", 4: "user had insufficient privilege",
            5: "program is not installed", 6: "program is not configured", 7: "program is not running"}
# codes that will not change on a retry
LSB_FATAL = frozenset({2, 3, 4, 5, 6})

# heartbeat ResourceManager we_own_resource(): shell `case` patterns on the status output.
# In `*[Nn][Oo][Tt]\ *[Rr]unning*`, `\ ` is a space and `*` is a wildcard (not a repeat).
_NOT_RUNNING = re.compile(r"[Nn][Oo][Tt] .*[Rr]unning", re.S)
_RUNNING = re.compile(r"[Rr]unning|OK")


def status_text_says(output: str) -> bool | None:
    """Heartbeat's status text rule: True (running), False (says not running), None (no verdict,
    which heartbeat treats as stopped)."""
    if _NOT_RUNNING.search(output):
        return False
    if _RUNNING.search(output):
        return True
    return None


def lsb_meaning(rc: int) -> str:
    if rc < 0:
        return f"killed by signal {-rc}"
    return LSB_EXIT.get(rc, "unknown exit code")


def find_script(name: str, dirs: tuple[str, ...]) -> str:
    """heartbeat scriptpath(): the first `dir/name` that is a file and executable."""
    if not name or "/" in name or name in (".", ".."):
        raise AgentError(f"script {name!r}: a resource script name cannot contain '/'", transient=False)
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise AgentError(f"cannot locate resource script {name} in {', '.join(dirs)}", transient=False)


@register
class ScriptAgent(Agent):
    kind = "script"

    def __init__(self, model: ScriptResource, ctx: AgentContext):
        super().__init__(model, ctx)
        self.model: ScriptResource = model
        self.last_status_output = ""

    @property
    def name(self) -> str:
        return "script " + "::".join((self.model.name, *self.model.args))

    async def _run(self, action: str) -> Completed:
        path = find_script(self.model.name, self.ctx.resource_dirs)
        return await run_program([path, *self.model.args, action], self.ctx)

    async def _status(self) -> Completed:
        done = await self._run("status")
        self.last_status_output = done.stdout
        return done

    async def start(self) -> None:
        if status_text_says((await self._status()).stdout) is True:
            # acquireresourcegroup: `we_own_resource "$j" || doscript "$j" start`
            log.info("%s: status says running; not starting it again", self.name)
            return
        done = await self._run("start")
        if done.rc != 0:
            raise AgentError(f"{self.name}: start exited {done.rc} ({lsb_meaning(done.rc)})"
                             + (f": {done.brief()}" if done.brief() else ""),
                             transient=done.rc not in LSB_FATAL, code=done.rc)

    async def stop(self) -> None:
        done = await self._run("stop")
        if done.rc == 0:
            return
        if not await self.monitor():
            log.warning("%s: stop exited %d but status says stopped; the script is probably not "
                        "LSB-compliant (stop must succeed when already stopped)", self.name, done.rc)
            return
        raise AgentError(f"{self.name}: stop exited {done.rc} ({lsb_meaning(done.rc)})"
                         + (f": {done.brief()}" if done.brief() else ""),
                         transient=done.rc not in LSB_FATAL, code=done.rc)

    async def monitor(self) -> bool:
        done = await self._status()
        said = status_text_says(done.stdout)
        if said is not None:
            return said
        if not done.stdout.strip():
            return done.rc == 0  # silent: LSB status, 0 = program is running
        return False  # heartbeat: text without "running"/"OK" means stopped

    def status(self) -> dict[str, Any]:
        out = self.last_status_output.strip().splitlines()
        return {"status_output": out[-1][:200]} if out else {}
