"""When each real's check runs: the check plan. Pure: fed `now` (int ms), never reads a clock.

How it works:
- Each real is a `Slot` with its check interval and an *anchor*: its checks are due at
  `anchor + k * interval`, the anchor being the time it was added plus a stable fraction of the
  interval (its *phase*, from a hash of its key), so 10,000 reals spread evenly over the interval
  instead of firing together, and keep their phase across reloads. Its first check is due within
  `startup_window` of being added, at the same fraction of that window (ldirectord checks every
  real as it starts).
- Due checks sit in a heap. `due(now)` pops every slot due by `now` (within 1 ms: event loops
  round timers to about a millisecond), schedules its next turn - the first point of its grid
  after max(due, now), so a stalled loop never causes a burst of catch-up checks - and returns the
  slots to start, at most `concurrency` in flight; the others wait in a queue, started by `done()`
  as checks finish. A slot whose previous check is still running or queued when its next one is
  due skips that turn (an *overrun*): a real never has two checks in flight.
- `next_deadline()` is when `due()` has work next; the driver arms one timer for it.
- `set(key, interval)` / `remove(key)` change the plan by difference (reload): an unchanged slot
  keeps its schedule; a new interval keeps the phase and takes effect from its next grid point.
- Lateness (a check's start minus its due time) is kept for `stats()` and the benchmark.

Slot states: idle -> (due) running | queued -> (done) idle; queued -> (a slot frees) running.
"""

from __future__ import annotations

import heapq
import zlib
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..config.model import RealKey

IDLE, QUEUED, RUNNING = 0, 1, 2
SLACK_MS = 1  # due within the timer resolution counts as due now
LATENESS_SAMPLES = 1 << 17


def phase_of(key: RealKey) -> float:
    """A stable fraction in [0, 1) for a real: where in the interval its checks run."""
    return zlib.crc32(f"{key.virtual}|{key.address}|{key.port}".encode()) / 2**32


class Slot:
    """One real in the plan. `data` is the driver's (the plan never looks at it)."""

    __slots__ = ("key", "interval", "anchor", "state", "gen", "alive", "data", "due_at")

    def __init__(self, key: RealKey, interval: int, anchor: int, data: Any) -> None:
        self.key, self.interval, self.anchor, self.data = key, interval, anchor, data
        self.state = IDLE
        self.gen = 0  # bumped when the schedule changes: older heap entries are then ignored
        self.alive = True
        self.due_at = 0  # when the check now running or queued was due

    def __repr__(self) -> str:
        return f"Slot({self.key}, every {self.interval} ms, state {self.state})"


@dataclass(frozen=True, slots=True)
class PlanStats:
    slots: int
    inflight: int
    queued: int
    overruns: int
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float


class CheckPlan:
    def __init__(self, concurrency: int = 1024, startup_window: int = 1000) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if startup_window < 0:
            raise ValueError(f"startup_window must not be negative, got {startup_window} ms")
        self.concurrency = concurrency
        self.startup_window = startup_window
        self.slots: dict[RealKey, Slot] = {}
        self._heap: list[tuple[int, int, Slot, int]] = []
        self._seq = 0
        self._waiting: deque[Slot] = deque()
        self.inflight = 0
        self.overruns = 0
        self._lateness = array("l", bytes(array("l").itemsize * LATENESS_SAMPLES))
        self._lat_n = 0

    # ------------------------------------------------------------------ changing the plan

    def set(self, key: RealKey, interval: int, now: int, data: Any = None) -> str:
        """Add a real, or give it a new interval. Returns "added", "changed" or "unchanged"."""
        if interval < 1:
            raise ValueError(f"{key}: check interval must be at least 1 ms, got {interval}")
        slot = self.slots.get(key)
        phase = phase_of(key)
        if slot is None:
            slot = Slot(key, interval, now + int(phase * interval), data)
            self.slots[key] = slot
            self._push(now + int(phase * min(interval, self.startup_window)), slot)
            return "added"
        if data is not None:
            slot.data = data
        if slot.interval == interval:
            return "unchanged"
        # keep the phase; the next check comes at the new interval's next grid point
        slot.interval = interval
        slot.anchor = now + int(phase * interval)
        slot.gen += 1  # its queued heap entry is now stale
        self._push(slot.anchor, slot)
        return "changed"

    def remove(self, key: RealKey) -> Slot | None:
        """Take a real out. A check of it in flight is the driver's to stop (then `done()`)."""
        slot = self.slots.pop(key, None)
        if slot is not None:
            slot.alive = False  # its heap entries and a queued turn are skipped
        return slot

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> int | None:
        """When `due()` has work next (ms), None when nothing is planned."""
        heap = self._heap
        while heap and (not heap[0][2].alive or heap[0][3] != heap[0][2].gen):
            heapq.heappop(heap)  # drop stale entries so the deadline is real
        return heap[0][0] if heap else None

    def due(self, now: int) -> list[Slot]:
        """Every slot due by `now`: the ones to start now (marked running)."""
        heap = self._heap
        horizon = now + SLACK_MS
        out: list[Slot] = []
        while heap and heap[0][0] <= horizon:
            due, _, slot, gen = heapq.heappop(heap)
            if not slot.alive or gen != slot.gen:
                continue
            # next turn: the first point of this real's grid after max(due, now): no catch-up
            base = due if due > now else now
            interval = slot.interval
            nxt = slot.anchor + interval * ((base - slot.anchor) // interval + 1)
            self._seq += 1
            heapq.heappush(heap, (nxt, self._seq, slot, gen))
            if slot.state != IDLE:
                self.overruns += 1  # still running or waiting: skip this turn
                continue
            slot.due_at = due
            if self.inflight >= self.concurrency:
                slot.state = QUEUED
                self._waiting.append(slot)
                continue
            self._start(slot, now)
            out.append(slot)
        return out

    def done(self, slot: Slot, now: int) -> list[Slot]:
        """A slot's check finished (or was stopped): the queued slots that may start now."""
        if slot.state == RUNNING:
            self.inflight -= 1
        slot.state = IDLE
        out: list[Slot] = []
        waiting = self._waiting
        while waiting and self.inflight < self.concurrency:
            nxt = waiting.popleft()
            if not nxt.alive or nxt.state != QUEUED:
                nxt.state = IDLE
                continue
            self._start(nxt, now)
            out.append(nxt)
        return out

    def clear(self) -> None:
        for slot in self.slots.values():
            slot.alive = False
        self.slots.clear()
        self._heap.clear()
        self._waiting.clear()
        self.inflight = 0

    # ------------------------------------------------------------------ reading

    @property
    def queued(self) -> int:
        return sum(1 for s in self._waiting if s.alive and s.state == QUEUED)

    def stats(self) -> PlanStats:
        n = min(self._lat_n, LATENESS_SAMPLES)
        lat = sorted(self._lateness[:n]) if n else [0]

        def pick(q: float) -> float:
            return float(lat[min(len(lat) - 1, int(q * len(lat)))])

        return PlanStats(len(self.slots), self.inflight, self.queued, self.overruns,
                         pick(0.5), pick(0.99), float(lat[-1]))

    def reset_lateness(self) -> None:
        self._lat_n = 0

    # ------------------------------------------------------------------ internals

    def _start(self, slot: Slot, now: int) -> None:
        slot.state = RUNNING
        self.inflight += 1
        late = now - slot.due_at
        self._lateness[self._lat_n % LATENESS_SAMPLES] = late if late > 0 else 0
        self._lat_n += 1

    def _push(self, due: int, slot: Slot) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, slot, slot.gen))
