"""The check scheduler: the thin asyncio driver of the check plan and the rise/fall cores.

How it works: `CheckPlan` (checks/plan.py, pure) decides when each real's check starts; this
driver feeds it the loop's clock in int ms, keeps one timer armed at `plan.next_deadline()`, starts
the probes the plan hands out (each bounded by its timeout: checktimeout or negotiatetimeout) and
tells the plan when each one ends. Each result goes to the real's `RiseFall` (checks/risefall.py,
pure); each transition becomes a `HealthEvent` - the real's key, its `RealHealth` fact and what
changed - passed to `on_event`. Maintenance files (ldirectord maintenancedir) are looked at when a
check is due. `update(virtual_services)` applies only the difference: unchanged reals keep their
state and schedule, changed ones keep their state and take the new parameters, new ones start,
gone ones stop (a check in flight is cancelled).

The connect check's fast path runs on callbacks, not tasks (checks/probes/connect.py): that is
what lets one core check 10,000 reals a second (bench/checks.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

from ..balancer.state import RealHealth
from ..config.model import RealKey, VirtualService
from ..ratelimit import RateLimited
from .base import CheckTarget, ProbeContext, ProbeResult, fast_probe_for, probe_for, target_for
from .plan import CheckPlan, Slot
from .risefall import CombinedCycle, RiseFall, Transition

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A real's check changed its verdict (or its dynamic weight): the fact, and what changed."""

    key: RealKey
    health: RealHealth
    kind: str  # "up", "down" or "weight"

    @property
    def up(self) -> bool:
        return self.health.up

    @property
    def weight(self) -> int | None:
        return self.health.weight

    @property
    def reason(self) -> str:
        return self.health.reason


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """The check state of one real, for display (`hadirector lvs --checks`, status). Times are
    the scheduler's clock in ms (`CheckScheduler.wall()` turns one into wall-clock seconds)."""

    key: RealKey
    up: bool
    weight: int | None
    last_ok: bool | None  # result of the last check; None before the first
    reason: str  # last check's result text (the failure reason when it failed)
    last_check: int | None
    last_change: int | None
    checks: int
    failures: int  # consecutive failures while up (soft failures, ldirectord)
    successes: int  # consecutive successes while down
    checktype: str
    latency_ms: float | None = None  # how long the last check took; None before the first


def status_of(fsm: RiseFall, checktype: str, took: float | None = None) -> CheckStatus:
    return CheckStatus(fsm.key, fsm.up, fsm.weight, fsm.last_ok, fsm.last_reason, fsm.last_check,
                       fsm.last_change, fsm.checks, fsm.failures, fsm.successes, checktype,
                       None if took is None else round(took * 1000, 3))


class _Real:
    """The driver's side of one real: what to check, its cores, the check in flight."""

    __slots__ = ("target", "fsm", "cycle", "probe_cache", "maint", "handle", "started", "took")

    def __init__(self, target: CheckTarget, fsm: RiseFall, maint: tuple[str, ...]) -> None:
        self.target, self.fsm, self.maint = target, fsm, maint
        self.cycle = CombinedCycle(target.num_connects) if target.checktype == "combined" else None
        self.probe_cache: dict = {}
        self.handle = None  # the check in flight: a task, a fast-path handle, or _STARTING
        self.started = 0.0  # when the check in flight started (the loop's clock, s)
        self.took: float | None = None  # how long the last finished check took (s)


@dataclass(frozen=True, slots=True)
class UpdateSummary:
    added: tuple[RealKey, ...]
    removed: tuple[RealKey, ...]
    changed: tuple[RealKey, ...]
    unchanged: int

    def __str__(self) -> str:
        return (f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed, "
                f"{self.unchanged} unchanged")


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    reals: int
    checks: int
    inflight: int
    queued: int
    overruns: int  # a check still running at its next due time (that turn skipped)
    timeouts: int
    errors: int  # probe bugs (exceptions), counted and logged, never fatal
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float


class CheckScheduler:
    def __init__(self, virtual_services: Iterable[VirtualService] = (), *,
                 on_event: Callable[[HealthEvent], None] | None = None,
                 concurrency: int = 1024, startup_window: float = 1.0,
                 maintenancedir: str | None = None, ctx: ProbeContext | None = None) -> None:
        self.plan = CheckPlan(concurrency, int(startup_window * 1000))
        self.on_event = on_event
        # told at the end of each check: (RealKey, seconds it took, ok); the daemon's metrics
        # (daemon/metrics.py: hadirector_check_duration_seconds, hadirector_check_failures_total)
        self.on_result: Callable[[RealKey, float, bool], None] | None = None
        self.startup_window = startup_window  # seconds (the plan keeps ms)
        self.maintenancedir = maintenancedir
        self.ctx = ctx or ProbeContext()
        self._virtuals: tuple[VirtualService, ...] = tuple(virtual_services)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        self._pending: deque[Slot] = deque()
        self._draining = False
        self._stopping = False
        self._checks = self._timeouts = self._errors = 0
        self._error_log = RateLimited(log, window=10.0, burst=1)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._apply(self._virtuals, first=True)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        self._stopping = True  # a cancelled check frees its place but starts no queued one
        self._pending.clear()
        slots = list(self.plan.slots.values())
        tasks = [s.data.handle for s in slots if isinstance(s.data.handle, asyncio.Task)]
        self.plan.clear()
        for slot in slots:
            self._cancel(slot)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None
        self._stopping = False
        await self.ctx.close()

    # ------------------------------------------------------------------ clock

    def now(self) -> int:
        """The scheduler's clock: the event loop's, in int ms."""
        return int(self._loop.time() * 1000) if self._loop is not None else int(time.monotonic() * 1000)

    def wall(self, ms: int | None) -> float | None:
        """A time of this clock as wall-clock seconds (for display)."""
        return None if ms is None else time.time() - (self.now() - ms) / 1000

    # ------------------------------------------------------------------ reading state

    def health(self) -> dict[RealKey, CheckStatus]:
        """Every real's check state."""
        return {k: status_of(s.data.fsm, s.data.target.checktype, s.data.took) for k, s in self.plan.slots.items()}

    def facts(self) -> dict[RealKey, RealHealth]:
        """Every real's fact (what the desired state is computed from)."""
        return {k: s.data.fsm.health() for k, s in self.plan.slots.items()}

    @property
    def virtual_services(self) -> tuple[VirtualService, ...]:
        return self._virtuals

    def stats(self) -> SchedulerStats:
        p = self.plan.stats()
        return SchedulerStats(p.slots, self._checks, p.inflight, p.queued, p.overruns, self._timeouts,
                              self._errors, p.lateness_p50_ms, p.lateness_p99_ms, p.lateness_max_ms)

    def reset_lateness(self) -> None:
        self.plan.reset_lateness()

    # ------------------------------------------------------------------ reload

    def update(self, virtual_services: Iterable[VirtualService]) -> UpdateSummary:
        """Apply a new set of virtual services, changing only what differs."""
        self._virtuals = tuple(virtual_services)
        if self._loop is None:  # not started: start() will build everything
            return UpdateSummary((), (), (), 0)
        return self._apply(self._virtuals, first=False)

    def _apply(self, virtuals: tuple[VirtualService, ...], first: bool) -> UpdateSummary:
        now = self.now()
        plan = self.plan
        wanted: dict[RealKey, tuple[VirtualService, CheckTarget]] = {}
        for vs in virtuals:
            for real in vs.reals:
                wanted[vs.real_key(real)] = (vs, target_for(vs, real))
        added, removed, changed = [], [], []
        unchanged = 0
        for key in [k for k in plan.slots if k not in wanted]:
            slot = plan.remove(key)
            self._cancel(slot)
            removed.append(key)
        for key, (vs, target) in wanted.items():
            slot = plan.slots.get(key)
            if slot is None:
                fsm = RiseFall.initial(key, vs.failurecount, vs.rise, vs.alpha, now)
                plan.set(key, vs.checkinterval, now, _Real(target, fsm, self._maint_paths(key)))
                added.append(key)
                continue
            real: _Real = slot.data
            real.fsm.retune(vs.failurecount, vs.rise)
            how = plan.set(key, vs.checkinterval, now)
            if real.target == target and how == "unchanged":
                unchanged += 1
                continue
            if real.target.checktype != target.checktype or real.target.num_connects != target.num_connects:
                real.cycle = CombinedCycle(target.num_connects) if target.checktype == "combined" else None
            real.target, real.probe_cache = target, {}
            changed.append(key)
        if not first and (added or removed or changed):
            log.info("checks reload: %d added, %d removed, %d changed, %d unchanged",
                     len(added), len(removed), len(changed), unchanged)
        self._rearm()
        # The reals' state lives as long as the configuration: move it out of the cyclic GC's
        # generations. Without this every full collection walks tens of thousands of objects and
        # stalls the loop: with 10,000 reals, check starts were 70-86 ms late at p99, 26 ms with it
        # (bench/checks.py).
        gc.freeze()
        return UpdateSummary(tuple(added), tuple(removed), tuple(changed), unchanged)

    def _maint_paths(self, key: RealKey) -> tuple[str, ...]:
        # ldirectord _check_real_for_maintenance: <dir>/<ip>:<port>, then <dir>/<ip>
        # (host-name forms need reverse DNS, which a check loop should not wait for)
        if not self.maintenancedir:
            return ()
        host = f"[{key.address}]" if ":" in key.address else key.address
        return (os.path.join(self.maintenancedir, f"{host}:{key.port}"), os.path.join(self.maintenancedir, host))

    # ------------------------------------------------------------------ timer

    def _rearm(self) -> None:
        loop = self._loop
        if loop is None:
            return
        at = self.plan.next_deadline()
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None:
            self._timer = loop.call_at(at / 1000, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self._start_all(self.plan.due(self.now()))
        self._rearm()

    # ------------------------------------------------------------------ checks

    def _start_all(self, slots: list[Slot]) -> None:
        """Start checks one after the other; a check that finishes at once (and frees a slot for a
        queued one) only adds to the list, so nothing recurses."""
        pending = self._pending
        pending.extend(slots)
        if self._draining:
            return
        self._draining = True
        try:
            while pending:
                self._launch(pending.popleft())
        finally:
            self._draining = False

    def _launch(self, slot: Slot) -> None:
        real: _Real = slot.data
        target = real.target
        kind = real.cycle.next_kind() if real.cycle is not None else target.checktype
        for path in real.maint:
            if os.path.exists(path):
                self._emit(real.fsm.force_down(f"in maintenance ({path})", self.now()))
                self._finish(slot)
                return
        real.started = self._loop.time()
        probes = real.probe_cache.get(kind)
        if probes is None:
            probes = real.probe_cache[kind] = (fast_probe_for(target, kind), probe_for(target, kind))
        fast, probe = probes
        if fast is not None:
            # the hot path (connect checks): callbacks, no task per check
            real.handle = _STARTING
            handle = fast(target, self.ctx, self._loop, target.timeout_for(kind),
                          lambda result, timed_out: self._done(slot, kind, result, timed_out))
            if real.handle is _STARTING:  # not finished at once
                real.handle = handle
            return
        real.handle = self._loop.create_task(self._check(slot, kind, probe))

    async def _check(self, slot: Slot, kind: str, probe) -> None:
        target = slot.data.target
        timeout = target.timeout_for(kind)
        timed_out = False
        try:
            try:
                async with asyncio.timeout(timeout):
                    result = await probe(target, self.ctx)
            except TimeoutError:
                timed_out = True
                result = ProbeResult(False, f"no answer within {timeout:g} s")
            except Exception as e:  # a probe bug must not stop the checks of every other real
                self._errors += 1
                if self._error_log.allow("check raised", self._loop.time()):
                    log.exception("check of %s raised (counted, further ones logged at most every 10 s)", slot.key)
                result = ProbeResult(False, f"check error: {type(e).__name__}: {e}")
        except asyncio.CancelledError:
            self._finish(slot)
            raise
        self._done(slot, kind, result, timed_out)

    def _done(self, slot: Slot, kind: str, result: ProbeResult, timed_out: bool) -> None:
        try:
            self._checks += 1
            if timed_out:
                self._timeouts += 1
            real: _Real = slot.data
            if real.cycle is not None:
                real.cycle.record(kind, result.ok)
            if slot.alive:
                real.took = self._loop.time() - real.started
                if self.on_result is not None:
                    try:
                        self.on_result(slot.key, real.took, result.ok)
                    except Exception:  # noqa: BLE001 - a metrics bug must not stop the checks
                        log.debug("on_result failed for %s", slot.key, exc_info=True)
                self._emit(real.fsm.on_result(result.ok, result.reason, self.now(), result.weight))
        finally:
            self._finish(slot)

    def _finish(self, slot: Slot) -> None:
        slot.data.handle = None
        if self._stopping:
            return
        more = self.plan.done(slot, self.now())
        if more:
            self._start_all(more)

    def _cancel(self, slot: Slot | None) -> None:
        """Stop a real's check in flight (reload removed it, or stopping)."""
        if slot is None:
            return
        handle = slot.data.handle
        if handle is None or handle is _STARTING:
            return  # nothing in flight (a queued turn is skipped: the slot is no longer alive)
        handle.cancel()
        if not isinstance(handle, asyncio.Task):  # a fast-path handle: nothing else will finish it
            self._finish(slot)

    def _emit(self, transitions: list[Transition]) -> None:
        for t in transitions:
            ev = HealthEvent(t.key, RealHealth(t.up, t.weight, t.reason, t.at), t.kind)
            if t.kind != "weight":  # the monitor (checks/monitor.py) logs it at NOTICE/WARNING
                log.debug("real %s: %s (%s)", t.key, "up" if t.up else "down", t.reason)
            if self.on_event is not None:
                try:
                    self.on_event(ev)
                except Exception:
                    log.exception("health event handler failed for %s", t.key)


class _Starting:
    """Marks a fast-path check between its start and its handle."""

    def cancel(self) -> None:
        pass


_STARTING = _Starting()


async def check_once(vs: VirtualService, real, kind: str | None = None,
                     ctx: ProbeContext | None = None) -> ProbeResult:
    """Run one check of one real now (tests, `hadirector` commands): the probe bounded by its timeout.
    `kind` defaults to the virtual's checktype (negotiate for combined)."""
    target = target_for(vs, real)
    if kind is None:
        kind = "negotiate" if target.checktype == "combined" else target.checktype
    own = ctx is None
    ctx = ctx or ProbeContext()
    timeout = target.timeout_for(kind)
    try:
        async with asyncio.timeout(timeout):
            return await probe_for(target, kind)(target, ctx)
    except TimeoutError:
        return ProbeResult(False, f"no answer within {timeout:g} s")
    finally:
        if own:
            await ctx.close()
