"""The check scheduler: runs every real's check every checkinterval and feeds the rise/fall core.

How it works:
- Each real of each virtual service is a *slot*: its resolved `CheckTarget`, its `RiseFall` core,
  its `CombinedCycle` (checktype = N) and its place in time. A real's checks run at
  `anchor + k * checkinterval`, where the anchor is the start plus a stable fraction of the
  interval taken from a hash of the real's key, so 10,000 reals spread evenly over the interval
  instead of all firing at once (no thundering herd) and keep their phase across reloads. The
  first check runs within `startup_window` of the start (ldirectord checks every real as it
  starts), at the same stable fraction of that window.
- One timer task pops due slots from a heap and launches their probes, at most `concurrency` at a
  time (the rest wait in a queue); a real whose previous check is still running when its next one
  is due skips that turn (counted as an overrun), so a real never has two checks in flight.
- Every probe is bounded by its timeout (checktimeout or negotiatetimeout). Its result goes to the
  real's `RiseFall`; each transition becomes a `HealthEvent` passed to `on_event`.
- `update(virtual_services)` applies only the difference: unchanged reals keep their state and
  schedule, changed ones keep their state and take the new parameters, new ones start, gone ones
  stop.
- Lateness (probe start minus its due time) is recorded for the benchmark and `stats()`.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import logging
import math
import os
import time
import zlib
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

from ..config.model import VirtualService
from ..ratelimit import RateLimited
from .base import (CheckTarget, CombinedCycle, ProbeContext, ProbeResult, RealKey, RiseFall, Transition,
                   fast_probe_for, probe_for, real_key, target_for)

log = logging.getLogger(__name__)

LATENESS_SAMPLES = 1 << 17
TIMER_SLACK = 0.001  # seconds


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A real changed state: what the balancer and the alerts react to."""

    key: RealKey
    up: bool
    weight: int | None  # dynamic weight (external_weight), None = the configured weight
    kind: str  # "up", "down" or "weight"
    reason: str  # the check result that caused it (failure reason when down)
    changed_at: float  # wall clock (time.time())


@dataclass(frozen=True, slots=True)
class RealHealth:
    """The check state of one real, for the balancer and for display (`hadirector lvs`, status)."""

    key: RealKey
    up: bool
    weight: int | None
    last_ok: bool | None  # result of the last check; None before the first
    reason: str  # last check's result text (the failure reason when it failed)
    last_check: float | None  # wall clock
    last_change: float | None  # wall clock
    checks: int
    failures: int  # consecutive failures while up (soft failures, ldirectord)
    successes: int  # consecutive successes while down
    checktype: str


def snapshot(fsm: RiseFall, checktype: str) -> RealHealth:
    return RealHealth(fsm.key, fsm.up, fsm.weight, fsm.last_ok, fsm.last_reason, fsm.last_check,
                      fsm.last_change, fsm.checks, fsm.failures, fsm.successes, checktype)


def phase_of(key: RealKey) -> float:
    """A stable fraction in [0, 1) for a real: where in the interval its checks run."""
    return zlib.crc32(f"{key.virtual}|{key.address}|{key.port}".encode()) / 2**32


class _Slot:
    __slots__ = ("key", "target", "fsm", "cycle", "interval", "anchor", "task", "alive", "probe_cache",
                 "maint", "gen")

    def __init__(self, key: RealKey, target: CheckTarget, fsm: RiseFall, interval: float, anchor: float) -> None:
        self.key, self.target, self.fsm = key, target, fsm
        self.cycle = CombinedCycle(target.num_connects) if target.checktype == "combined" else None
        self.interval, self.anchor = interval, anchor
        self.task: asyncio.Task | None = None
        self.alive = True
        self.probe_cache: dict = {}
        self.maint: tuple[str, ...] = ()
        self.gen = 0  # bumped when the schedule changes: older heap entries are then ignored


@dataclass(frozen=True, slots=True)
class UpdateSummary:
    added: tuple[RealKey, ...]
    removed: tuple[RealKey, ...]
    changed: tuple[RealKey, ...]
    unchanged: int


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
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.on_event = on_event
        self.concurrency = concurrency
        self.startup_window = startup_window
        self.maintenancedir = maintenancedir
        self.ctx = ctx or ProbeContext()
        self._virtuals: tuple[VirtualService, ...] = tuple(virtual_services)
        self._slots: dict[RealKey, _Slot] = {}
        self._heap: list[tuple[float, int, _Slot, int]] = []
        self._seq = 0
        self._waiting: deque[tuple[_Slot, float]] = deque()
        self._inflight = 0
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task | None = None
        self._wake: asyncio.Future | None = None
        self._wake_at = math.inf
        self._checks = self._overruns = self._timeouts = self._errors = 0
        self._lateness = array("d", bytes(8 * LATENESS_SAMPLES))
        self._lat_n = 0
        self._error_log = RateLimited(log, window=10.0, burst=1)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._apply(self._virtuals, first=True)
        self._runner = self._loop.create_task(self._run(), name="hadirector-checks")

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                pass
        self._waiting.clear()
        tasks = [s.task for s in self._slots.values() if isinstance(s.task, asyncio.Task)]
        for slot in self._slots.values():
            self._cancel(slot)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.ctx.close()

    # ------------------------------------------------------------------ reading state

    def health(self) -> dict[RealKey, RealHealth]:
        """The current health map: every real's check state."""
        return {k: snapshot(s.fsm, s.target.checktype) for k, s in self._slots.items()}

    @property
    def virtual_services(self) -> tuple[VirtualService, ...]:
        return self._virtuals

    def stats(self) -> SchedulerStats:
        n = min(self._lat_n, LATENESS_SAMPLES)
        lat = sorted(self._lateness[:n]) if n else [0.0]
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        return SchedulerStats(len(self._slots), self._checks, self._inflight, len(self._waiting), self._overruns,
                              self._timeouts, self._errors, pick(0.5), pick(0.99), lat[-1] * 1000)

    def reset_lateness(self) -> None:
        self._lat_n = 0

    # ------------------------------------------------------------------ reload

    def update(self, virtual_services: Iterable[VirtualService]) -> UpdateSummary:
        """Apply a new set of virtual services, changing only what differs."""
        self._virtuals = tuple(virtual_services)
        if self._loop is None:  # not started: start() will build everything
            return UpdateSummary((), (), (), 0)
        return self._apply(self._virtuals, first=False)

    def _apply(self, virtuals: tuple[VirtualService, ...], first: bool) -> UpdateSummary:
        now = self._loop.time()
        wall = time.time()
        wanted: dict[RealKey, tuple[VirtualService, CheckTarget]] = {}
        for vs in virtuals:
            for real in vs.reals:
                key = real_key(vs, real)
                wanted[key] = (vs, target_for(vs, real))
        added, removed, changed = [], [], []
        unchanged = 0
        for key in list(self._slots):
            if key not in wanted:
                slot = self._slots.pop(key)
                slot.alive = False
                self._cancel(slot)
                removed.append(key)
        for key, (vs, target) in wanted.items():
            interval = vs.checkinterval / 1000
            slot = self._slots.get(key)
            if slot is None:
                fsm = RiseFall.initial(key, vs.failurecount, vs.rise, vs.alpha, wall)
                phase = phase_of(key)
                slot = _Slot(key, target, fsm, interval, now + phase * interval)
                slot.maint = self._maint_paths(key)
                self._slots[key] = slot
                self._push(now + phase * min(interval, self.startup_window), slot)
                added.append(key)
                continue
            slot.fsm.retune(vs.failurecount, vs.rise)
            if slot.target == target and slot.interval == interval:
                unchanged += 1
                continue
            if slot.target.checktype != target.checktype or slot.target.num_connects != target.num_connects:
                slot.cycle = CombinedCycle(target.num_connects) if target.checktype == "combined" else None
            slot.target, slot.probe_cache = target, {}
            if slot.interval != interval:
                # keep the phase; the next check comes at the new interval's next slot
                slot.anchor = now + phase_of(key) * interval
                slot.interval = interval
                slot.gen += 1  # its queued heap entry is now stale
                self._push(slot.anchor, slot)
            changed.append(key)
        if not first and (added or removed or changed):
            log.info("checks reload: %d added, %d removed, %d changed, %d unchanged",
                     len(added), len(removed), len(changed), unchanged)
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

    # ------------------------------------------------------------------ timing

    def _push(self, due: float, slot: _Slot) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, slot, slot.gen))
        if due < self._wake_at and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _run(self) -> None:
        loop = self._loop
        heap = self._heap
        while True:
            now = loop.time()
            # due within the timer resolution counts as due now: event loops round timers to about
            # 1 ms, so waiting for a slot 0.3 ms away would spin on timers that fire early
            horizon = now + TIMER_SLACK
            while heap and heap[0][0] <= horizon:
                due, _, slot, gen = heapq.heappop(heap)
                if not slot.alive or gen != slot.gen:
                    continue
                # next turn: the first slot of this real's grid after max(due, now) (no catch-up burst)
                base = max(due, now)
                nxt = slot.anchor + slot.interval * (math.floor((base - slot.anchor) / slot.interval) + 1)
                if nxt <= base:
                    nxt += slot.interval
                self._seq += 1
                heapq.heappush(heap, (nxt, self._seq, slot, gen))
                if slot.task is not None:
                    self._overruns += 1
                    continue
                if self._inflight >= self.concurrency:
                    slot.task = _QUEUED
                    self._waiting.append((slot, due))
                    continue
                self._launch(slot, due)
            wake_at = heap[0][0] if heap else now + 3600
            self._wake_at = wake_at
            fut = self._wake = loop.create_future()
            handle = loop.call_at(wake_at, _resolve, fut)
            try:
                await fut
            finally:
                handle.cancel()
                self._wake_at = math.inf

    def _launch(self, slot: _Slot, due: float) -> None:
        loop = self._loop
        self._inflight += 1
        self._lateness[self._lat_n % LATENESS_SAMPLES] = max(0.0, loop.time() - due)
        self._lat_n += 1
        target = slot.target
        kind = slot.cycle.next_kind() if slot.cycle is not None else target.checktype
        for path in slot.maint:
            if os.path.exists(path):
                self._emit(slot.fsm.force_down(f"in maintenance ({path})", time.time()))
                self._release(slot)
                return
        probes = slot.probe_cache.get(kind)
        if probes is None:
            probes = slot.probe_cache[kind] = (fast_probe_for(target, kind), probe_for(target, kind))
        fast, probe = probes
        if fast is not None:
            # the hot path (connect checks): callbacks, no task per check
            slot.task = _RUNNING
            handle = fast(target, self.ctx, loop, target.timeout_for(kind),
                          lambda result, timed_out: self._done(slot, kind, result, timed_out))
            if slot.task is _RUNNING:  # not finished at once
                slot.task = handle
            return
        slot.task = loop.create_task(self._check(slot, kind, probe))

    async def _check(self, slot: _Slot, kind: str, probe) -> None:
        target = slot.target
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
            self._release(slot)
            raise
        self._done(slot, kind, result, timed_out)

    def _done(self, slot: _Slot, kind: str, result: ProbeResult, timed_out: bool) -> None:
        try:
            self._checks += 1
            if timed_out:
                self._timeouts += 1
            if slot.cycle is not None:
                slot.cycle.record(kind, result.ok)
            if slot.alive:
                self._emit(slot.fsm.on_result(result.ok, result.reason, time.time(), result.weight))
        finally:
            self._release(slot)

    def _release(self, slot: _Slot) -> None:
        slot.task = None
        self._inflight -= 1
        if self._draining:  # a check that finished at once inside the loop below: no recursion
            return
        self._draining = True
        try:
            while self._waiting and self._inflight < self.concurrency:
                nslot, ndue = self._waiting.popleft()
                nslot.task = None
                if nslot.alive:
                    self._launch(nslot, ndue)
        finally:
            self._draining = False

    def _cancel(self, slot: _Slot) -> None:
        """Stop a real's check in flight (reload removed it, or stopping)."""
        task = slot.task
        if task is None or task is _QUEUED:
            return  # a queued slot is skipped when dequeued (alive is False)
        task.cancel()
        if not isinstance(task, asyncio.Task):  # a fast-path handle: nothing else will release it
            self._release(slot)

    def _emit(self, transitions: list[Transition]) -> None:
        for t in transitions:
            ev = HealthEvent(t.key, t.up, t.weight, t.kind, t.reason, t.at)
            if t.kind != "weight":
                log.info("real %s: %s (%s)", t.key, "up" if t.up else "down", t.reason)
            if self.on_event is not None:
                try:
                    self.on_event(ev)
                except Exception:
                    log.exception("health event handler failed for %s", t.key)


class _Queued:
    """Marks a slot that waits for a concurrency slot (so it is not queued twice)."""

    def cancel(self) -> None:
        pass


_QUEUED = _Queued()
_RUNNING = _Queued()  # a fast-path check between its start and its handle


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


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
