"""The `ocf` agent: an Open Cluster Framework resource agent, e.g. from the resource-agents package.

The agent is `$OCF_ROOT/resource.d/<provider>/<agent>` (OCF_ROOT defaults to /usr/lib/ocf), run as
`<agent> start|stop|monitor` with the environment the OCF RA API defines: OCF_ROOT,
OCF_RA_VERSION_MAJOR/MINOR, OCF_RESOURCE_INSTANCE, OCF_RESOURCE_TYPE, OCF_RESOURCE_PROVIDER,
OCF_FUNCTIONS_DIR, and one OCF_RESKEY_<name> per parameter.

Exit codes (OCF RA API, "Return codes"): 0 success, 1 generic error, 2 invalid arguments,
3 unimplemented, 4 insufficient privilege, 5 not installed, 6 not configured, 7 not running,
8 running promoted, 9 failed promoted, 190/191 degraded. monitor: 0, 8, 190 and 191 mean running,
7 not running, anything else an error. stop: 0 is success and so is 7 (already stopped; the API
asks for 0 then, some agents say 7).

OCF_RESOURCE_INSTANCE is `<agent>_<hash of the parameters>`, stable across restarts, so an agent
that keeps state under its instance name (Dummy's state file) finds it again after a crash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re

from ..config.model import OcfResource
from .base import Agent, AgentContext, AgentError, Completed, register, run_program

log = logging.getLogger(__name__)

OCF_SUCCESS = 0
OCF_NOT_RUNNING = 7
OCF_CODES = {0: "success", 1: "generic error", 2: "invalid arguments", 3: "unimplemented",
             4: "insufficient privilege", 5: "not installed", 6: "not configured",
             7: "not running", 8: "running (promoted)", 9: "failed (promoted)",
             190: "degraded", 191: "degraded (promoted)"}
RUNNING_CODES = frozenset({0, 8, 190, 191})
FATAL_CODES = frozenset({2, 3, 4, 5, 6})  # configuration or installation: a retry will not help
_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
_PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ocf_meaning(rc: int) -> str:
    if rc < 0:
        return f"killed by signal {-rc}"
    return OCF_CODES.get(rc, "unknown exit code")


def instance_name(model: OcfResource) -> str:
    digest = hashlib.sha256(repr(sorted(model.params.items())).encode()).hexdigest()[:8]
    return f"{model.agent}_{digest}"


def ocf_environment(model: OcfResource, ocf_root: str) -> dict[str, str]:
    bad = [k for k in model.params if not _PARAM_RE.match(k)]
    if bad:
        raise AgentError(f"ocf {model.provider}:{model.agent}: parameter name(s) {', '.join(bad)} "
                         f"cannot become OCF_RESKEY_ variables (letters, digits, _)", transient=False)
    env = {"OCF_ROOT": ocf_root, "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "0",
           "OCF_RESOURCE_INSTANCE": instance_name(model), "OCF_RESOURCE_TYPE": model.agent,
           "OCF_RESOURCE_PROVIDER": model.provider,
           "OCF_FUNCTIONS_DIR": os.path.join(ocf_root, "lib", "heartbeat")}
    env.update({f"OCF_RESKEY_{k}": v for k, v in model.params.items()})
    return env


@register
class OcfAgent(Agent):
    kind = "ocf"

    def __init__(self, model: OcfResource, ctx: AgentContext):
        super().__init__(model, ctx)
        self.model: OcfResource = model

    @property
    def name(self) -> str:
        return f"ocf {self.model.provider}:{self.model.agent}"

    def path(self) -> str:
        for part in (self.model.provider, self.model.agent):
            if not _NAME_RE.match(part) or part in (".", ".."):
                raise AgentError(f"{self.name}: {part!r} is not a valid provider or agent name",
                                 transient=False)
        path = os.path.join(self.ctx.ocf_root, "resource.d", self.model.provider, self.model.agent)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise AgentError(f"{self.name}: no executable agent at {path} (OCF_ROOT {self.ctx.ocf_root}"
                             f"; is resource-agents installed?)", transient=False, code=5)
        return path

    async def _run(self, action: str) -> Completed:
        env = ocf_environment(self.model, self.ctx.ocf_root)
        return await run_program([self.path(), action], self.ctx, env=env)

    def _fail(self, action: str, done: Completed) -> AgentError:
        brief = done.brief()
        return AgentError(f"{self.name}: {action} exited {done.rc} ({ocf_meaning(done.rc)})"
                          + (f": {brief}" if brief else ""),
                          transient=done.rc not in FATAL_CODES, code=done.rc)

    async def start(self) -> None:
        done = await self._run("start")
        if done.rc != OCF_SUCCESS:
            raise self._fail("start", done)

    async def stop(self) -> None:
        done = await self._run("stop")
        if done.rc == OCF_NOT_RUNNING:
            log.info("%s: stop said not running (7); counted as stopped", self.name)
        elif done.rc != OCF_SUCCESS:
            raise self._fail("stop", done)

    async def monitor(self) -> bool:
        done = await self._run("monitor")
        if done.rc in RUNNING_CODES:
            if done.rc >= 190:
                log.warning("%s: monitor says degraded (%d)", self.name, done.rc)
            return True
        if done.rc == OCF_NOT_RUNNING:
            return False
        raise self._fail("monitor", done)
