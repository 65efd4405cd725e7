"""The resource manager: starts, stops and monitors resource groups with their agents (asyncio).

The daemon calls it when the arbiter says so:

    manager = ResourceManager(AgentContext(), on_failure=callback)
    ok = await manager.start_group(group)     # acquire: True when every resource runs
    ok = await manager.stop_group(group)      # release: True when every resource stopped
    ok = await manager.stop_group(group, drain=True)  # a planned release: drain the VIPs first
    await manager.stop_stale(groups)          # start-up: stop what a crash left running
    failure = await manager.failures.get()    # GroupFailure from monitoring (also on_failure)
    manager.snapshot()                        # for `hadirector status`
    await manager.reannounce(name)            # after a split brain: gratuitous ARP again
    await manager.close()                     # shutdown: cancel monitors (resources untouched)

Rules (heartbeat's ResourceManager where it has one):
- start: resources start in haresources order (acquireresourcegroup). A resource whose start fails
  is stopped, then started again after `retry_delay`, up to `group.retries` more times; a fatal
  error (script or agent missing, bad arguments) is not retried. When a resource cannot start, the
  whole group is stopped in reverse order (heartbeat: "Giving up resources due to failure of ...")
  and start_group returns False, so the cluster core can release the group to the peer.
- stop: resources stop in reverse order (giveupresourcegroup), each tried up to 1 + `group.retries`
  times; a resource whose stop keeps failing but whose monitor says stopped counts as stopped (the
  "not LSB-compliant" case). stop always goes on to the next resource; it returns False if any
  resource may still run (heartbeat would reboot the node there; we report and leave that to the
  daemon).
- monitor (heartbeat v1 had none; this is ours): every `group.monitor_interval` each resource of a
  running group is monitored in order. A resource found stopped (or whose monitor fails) is
  restarted (stop, start), up to `group.retries` times; one more failure marks the group FAILED
  and reports a GroupFailure (queue `failures` and `on_failure`). The manager does not stop a
  failed group by itself: releasing it is the cluster core's decision, and the daemon's
  stop_group call does it. A resource's failure count goes back to 0 once it has run cleanly for
  10 monitor intervals since its last failure.
- drain (stop_group(drain=True), the arbiter's ReleaseGroup.drain: a planned hand-over): before
  anything stops, every VIP of a running group drains at once (resources/vip.py: new TCP
  connections refused, those in flight given up to the VIP's `drain` ms to finish); then the
  stop proceeds as above whatever the drains found.
- every call has a timeout: start_timeout, stop_timeout, and for monitor the smaller of
  start_timeout and `monitor_timeout_ms` (20 s). A timed-out call is cancelled (its program killed)
  and counts as a failure.
- stop_group while the group is starting cancels the start (start_group then returns False), then
  stops every resource. Cancelling the caller of start_group or stop_group does not cancel the
  operation itself (it is shielded); close() and stop_group do.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..config.model import Group
from ..errors import is_transient
from .base import Agent, AgentContext, AgentError, agent_for, call_with_timeout

FAILED_KEPT = 50  # failed actions kept for `hadirector status`

log = logging.getLogger(__name__)

FAILCOUNT_RESET_INTERVALS = 10


class GroupState(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"  # a start, monitor or stop failed for good; stop_group clears it


@dataclass(frozen=True)
class GroupFailure:
    group: str
    resource: str  # the agent's name, e.g. "vip 198.18.0.10"
    phase: str  # "monitor"
    reason: str


@dataclass
class _Run:
    group: Group
    agents: list[Agent]
    state: GroupState = GroupState.STOPPED
    failcounts: list[int] = field(default_factory=list)
    last_failure: list[float] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    last_error: str | None = None
    starting: asyncio.Task | None = None
    stopping: asyncio.Task | None = None
    monitor: asyncio.Task | None = None

    def __post_init__(self) -> None:
        n = len(self.agents)
        self.failcounts = [0] * n
        self.last_failure = [0.0] * n
        self.errors = [None] * n


def _as_agent_error(e: BaseException) -> AgentError:
    if isinstance(e, AgentError):
        return e
    return AgentError(f"{type(e).__name__}: {e}", transient=is_transient(e))


class ResourceManager:
    def __init__(self, ctx: AgentContext | None = None, *,
                 on_failure: Callable[[GroupFailure], Any] | None = None,
                 retry_delay_ms: int = 1000, monitor_timeout_ms: int = 20_000):
        self.ctx = ctx or AgentContext()
        self.on_failure = on_failure
        self.retry_delay_ms = retry_delay_ms
        self.monitor_timeout_ms = monitor_timeout_ms
        self.failures: asyncio.Queue[GroupFailure] = asyncio.Queue()
        self._runs: dict[str, _Run] = {}
        # the last failed actions, newest last (crm_mon's "Failed Resource Actions"): group,
        # resource, action (start, stop, monitor), reason, time (wall clock, for display)
        self.failed_actions: collections.deque[dict[str, Any]] = collections.deque(maxlen=FAILED_KEPT)

    def _failed(self, group: Group, agent: Agent, action: str, reason: str) -> None:
        self.failed_actions.append({"group": group.name, "resource": agent.name, "action": action,
                                    "reason": reason, "time": time.time()})

    # ----------------------------------------------------------------------------- public API

    def state(self, name: str) -> GroupState:
        run = self._runs.get(name)
        return run.state if run else GroupState.STOPPED

    def snapshot(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, run in self._runs.items():
            out[name] = {
                "state": run.state.value,
                "last_error": run.last_error,
                "resources": [{"name": a.name, "failures": run.failcounts[i], "last_error": run.errors[i],
                               **a.status()} for i, a in enumerate(run.agents)],
            }
        return out

    async def start_group(self, group: Group) -> bool:
        """Start every resource of `group` in order; True when all run (monitoring then begins).
        False when one could not start: the group has then been stopped again."""
        run = await self._run_for(group)
        if run.state == GroupState.RUNNING:
            return True
        if run.stopping is not None:
            await asyncio.shield(run.stopping)
        if run.starting is None:
            run.starting = asyncio.get_running_loop().create_task(self._start(run),
                                                                  name=f"start group {group.name}")
        task = run.starting
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if task.cancelled() and not (me is not None and me.cancelling()):
                return False  # stop_group cancelled the start; our caller was not cancelled
            raise
        finally:
            if task.done() and run.starting is task:
                run.starting = None

    async def stop_group(self, group: Group, drain: bool = False) -> bool:
        """Stop every resource of `group` in reverse order, whatever state it is in (a group this
        manager never started is stopped too). True when every resource stopped. `drain`: a
        planned release; a running group's VIPs drain first (see the module docstring)."""
        run = self._runs.get(group.name)
        if run is None or run.group != group:
            run = await self._run_for(group)
        if run.stopping is None:
            run.stopping = asyncio.get_running_loop().create_task(self._stop(run, drain),
                                                                  name=f"stop group {group.name}")
        task = run.stopping
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and run.stopping is task:
                run.stopping = None

    async def stop_stale(self, groups: Iterable[Group]) -> list[str]:
        """Start-up cleanup: for each group (ones this node does not own), stop every resource
        that is running or whose state cannot be told, in reverse order. Returns what was stopped,
        as "group: resource" strings; raises AgentError naming what could not be stopped."""
        stopped: list[str] = []
        failed: list[str] = []
        for group in groups:
            run = self._runs.get(group.name)
            if run is not None and run.state in (GroupState.RUNNING, GroupState.STARTING):
                log.warning("group %s: stop_stale asked for a group this node runs; skipped", group.name)
                continue
            for agent in reversed(self._make_agents(group)):
                try:
                    running: bool | None = await call_with_timeout(
                        f"group {group.name}: {agent.name} monitor", agent.monitor(),
                        self._monitor_timeout(group))
                except Exception as e:  # noqa: BLE001 - unknown state: stop it to be safe
                    log.warning("group %s: %s state unknown at start-up (%s); stopping it",
                                group.name, agent.name, _as_agent_error(e))
                    running = None
                if running is False:
                    await agent.close()
                    continue
                log.warning("group %s: %s is running but this node does not own the group; stopping it",
                            group.name, agent.name)
                if await self._stop_one(group, agent):
                    stopped.append(f"{group.name}: {agent.name}")
                else:
                    failed.append(f"{group.name}: {agent.name}")
                await agent.close()
        if failed:
            # the caller must not report these groups stopped: a peer would start them while
            # this node still runs a piece (a VIP twice on the network)
            raise AgentError(f"could not stop {', '.join(failed)}", transient=True)
        return stopped

    async def reannounce(self, name: str) -> int:
        """Send the group's announcements again (gratuitous ARP for its VIPs): the keeper of a group
        after a healed partition re-announces its addresses. Returns how many resources announced;
        0 when the group is not running here."""
        run = self._runs.get(name)
        if run is None or run.state != GroupState.RUNNING:
            log.warning("group %s: not running here; nothing to re-announce", name)
            return 0
        count = 0
        for agent in list(run.agents):
            try:
                if await agent.reannounce():
                    count += 1
            except Exception as e:  # noqa: BLE001
                log.warning("group %s: %s re-announce failed: %s", name, agent.name, _as_agent_error(e))
        return count

    async def close(self) -> None:
        """Cancel monitoring and any start/stop in progress; resources are left as they are."""
        tasks = []
        for run in self._runs.values():
            for t in (run.monitor, run.starting, run.stopping):
                if t is not None and not t.done():
                    t.cancel()
                    tasks.append(t)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for run in self._runs.values():
            for a in run.agents:
                await a.close()

    # ----------------------------------------------------------------------------- internals

    def _make_agents(self, group: Group) -> list[Agent]:
        return [agent_for(r, self.ctx) for r in group.resources]

    async def _run_for(self, group: Group) -> _Run:
        run = self._runs.get(group.name)
        if run is not None and run.group != group:
            # the group's definition changed (reload): the old resources go first
            if run.state != GroupState.STOPPED:
                log.info("group %s: definition changed; stopping the old resources", group.name)
                await self.stop_group(run.group)
            for a in run.agents:
                await a.close()
            run = None
        if run is None:
            run = _Run(group, self._make_agents(group))
            self._runs[group.name] = run
        return run

    def _monitor_timeout(self, group: Group) -> int:
        return min(group.start_timeout, self.monitor_timeout_ms)

    async def _start_one(self, group: Group, agent: Agent) -> None:
        try:
            await call_with_timeout(f"{agent.name} start", agent.start(), group.start_timeout)
        except Exception as e:  # noqa: BLE001 - an agent bug must not take the daemon down
            raise _as_agent_error(e) from None

    async def _stop_one(self, group: Group, agent: Agent) -> bool:
        """Stop one resource, retrying; True when it is stopped (or says it is)."""
        err: AgentError | None = None
        for attempt in range(1 + group.retries):
            if attempt:
                await asyncio.sleep(self.retry_delay_ms / 1000.0)
            try:
                await call_with_timeout(f"{agent.name} stop", agent.stop(), group.stop_timeout)
                return True
            except Exception as e:  # noqa: BLE001
                err = _as_agent_error(e)
                self._failed(group, agent, "stop", str(err))
                log.warning("group %s: %s stop failed (attempt %d of %d): %s", group.name, agent.name,
                            attempt + 1, 1 + group.retries, err)
        try:
            running = await call_with_timeout(f"{agent.name} monitor", agent.monitor(),
                                              self._monitor_timeout(group))
        except Exception:  # noqa: BLE001
            running = True
        if not running:
            log.warning("group %s: %s stop kept failing but it reports stopped; going on",
                        group.name, agent.name)
            return True
        log.critical("group %s: %s could not be stopped: %s", group.name, agent.name, err)
        return False

    async def _start(self, run: _Run) -> bool:
        group = run.group
        run.state = GroupState.STARTING
        run.last_error = None
        for i in range(len(run.agents)):
            run.failcounts[i] = 0
            run.errors[i] = None
        log.info("group %s: starting %d resource(s)", group.name, len(run.agents))
        for agent in run.agents:
            # before any resource starts: e.g. the balancer commits the synced NAT connections
            # before a VIP is announced (Agent.prepare)
            try:
                await call_with_timeout(f"{agent.name} prepare", agent.prepare(), group.start_timeout)
            except Exception as e:  # noqa: BLE001 - the start below reports what does not work
                log.warning("group %s: %s prepare failed: %s", group.name, agent.name, _as_agent_error(e))
        for i, agent in enumerate(run.agents):
            attempt = 0
            while True:
                try:
                    await self._start_one(group, agent)
                    log.info("group %s: %s started", group.name, agent.name)
                    break
                except AgentError as e:
                    attempt += 1
                    run.failcounts[i] += 1
                    run.errors[i] = run.last_error = str(e)
                    self._failed(group, agent, "start", str(e))
                    log.warning("group %s: %s start failed (attempt %d of %d): %s", group.name,
                                agent.name, attempt, 1 + group.retries, e)
                    if not e.transient or attempt > group.retries:
                        log.error("group %s: giving up the group: %s did not start", group.name,
                                  agent.name)
                        run.state = GroupState.STOPPING
                        await self._stop_agents(run)
                        run.state = GroupState.FAILED
                        run.last_error = f"{agent.name} did not start: {e}"
                        return False
                    # clean up what the failed start left, then try again
                    with contextlib.suppress(Exception):
                        await call_with_timeout(f"{agent.name} stop", agent.stop(), group.stop_timeout)
                    await asyncio.sleep(self.retry_delay_ms / 1000.0)
        run.state = GroupState.RUNNING
        log.info("group %s: running", group.name)
        run.monitor = asyncio.get_running_loop().create_task(self._monitor_loop(run),
                                                             name=f"monitor group {group.name}")
        return True

    async def _stop_agents(self, run: _Run) -> bool:
        ok = True
        for i in reversed(range(len(run.agents))):
            agent = run.agents[i]
            if await self._stop_one(run.group, agent):
                log.info("group %s: %s stopped", run.group.name, agent.name)
            else:
                ok = False
                run.errors[i] = run.last_error = f"{agent.name} could not be stopped"
        return ok

    async def _drain(self, run: _Run) -> None:
        """Drain every VIP of the running group at once (their own `drain` bounds each)."""
        group = run.group
        vips = [a for a in run.agents if callable(getattr(a, "drain", None))]
        if not vips:
            return

        async def one(agent) -> None:
            try:
                await call_with_timeout(f"{agent.name} drain", agent.drain(group=group.name),
                                        group.stop_timeout)
            except Exception as e:  # noqa: BLE001 - a drain that fails only means no drain
                log.warning("group %s: %s drain failed: %s", group.name, agent.name, _as_agent_error(e))

        await asyncio.gather(*(one(a) for a in vips))

    async def _stop(self, run: _Run, drain: bool = False) -> bool:
        group = run.group
        if drain and run.state == GroupState.RUNNING:
            await self._drain(run)  # the monitor goes on meanwhile: the group still runs
        for t in (run.monitor, run.starting):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        run.monitor = None
        run.state = GroupState.STOPPING
        log.info("group %s: stopping %d resource(s)", group.name, len(run.agents))
        ok = await self._stop_agents(run)
        run.state = GroupState.STOPPED if ok else GroupState.FAILED
        log.info("group %s: %s", group.name, "stopped" if ok else "stop incomplete")
        return ok

    async def _monitor_loop(self, run: _Run) -> None:
        group = run.group
        loop = asyncio.get_running_loop()
        interval = group.monitor_interval / 1000.0
        while True:
            await asyncio.sleep(interval)
            for i, agent in enumerate(run.agents):
                reason = None
                try:
                    if not await call_with_timeout(f"{agent.name} monitor", agent.monitor(),
                                                   self._monitor_timeout(group)):
                        reason = f"{agent.name} is not running"
                except Exception as e:  # noqa: BLE001
                    reason = str(_as_agent_error(e))
                if reason is None:
                    if (run.failcounts[i] and loop.time() - run.last_failure[i]
                            >= FAILCOUNT_RESET_INTERVALS * interval):
                        run.failcounts[i] = 0
                    continue
                if not await self._recover(run, i, reason):
                    run.state = GroupState.FAILED
                    run.last_error = reason
                    failure = GroupFailure(group.name, agent.name, "monitor", reason)
                    log.error("group %s: failed: %s (after %d restart(s)); the group must be released",
                              group.name, reason, group.retries)
                    self.failures.put_nowait(failure)
                    if self.on_failure is not None:
                        try:
                            self.on_failure(failure)
                        except Exception:  # noqa: BLE001
                            log.exception("group %s: failure callback raised", group.name)
                    return

    async def _recover(self, run: _Run, i: int, reason: str) -> bool:
        """Restart resource i after a monitor failure while its failure count allows."""
        group, agent = run.group, run.agents[i]
        loop = asyncio.get_running_loop()
        while True:
            run.failcounts[i] += 1
            run.last_failure[i] = loop.time()
            run.errors[i] = reason
            self._failed(group, agent, "monitor", reason)
            if run.failcounts[i] > group.retries:
                return False
            log.warning("group %s: %s; restarting it (failure %d, %d allowed)", group.name, reason,
                        run.failcounts[i], group.retries)
            with contextlib.suppress(Exception):
                await call_with_timeout(f"{agent.name} stop", agent.stop(), group.stop_timeout)
            try:
                await self._start_one(group, agent)
                log.info("group %s: %s restarted", group.name, agent.name)
                return True
            except AgentError as e:
                reason = f"{agent.name} restart failed: {e}"
                if not e.transient:
                    run.failcounts[i] = group.retries
                await asyncio.sleep(self.retry_delay_ms / 1000.0)
