"""The rise/fall core of one real: what consecutive check results mean. Pure.

How it works:
- `RiseFall` is the per-real state machine fed with probe results and `now` (int ms, the
  scheduler's clock): `failurecount` consecutive failures mark an up real down (ldirectord
  `_service_down` soft failures), `rise` consecutive successes mark a down real up (HAProxy
  `rise`; ldirectord has rise = 1). With `alpha` (keepalived) a real starts down and its first
  success brings it up; otherwise it starts up. It never reads the clock and returns the
  transitions it made; `health()` is the fact the checks report for the real (balancer/state.py
  `RealHealth`: up, weight, reason, since).
- `CombinedCycle` is ldirectord's `checktype = N`: N connect checks, then one negotiate check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..balancer.state import RealHealth
from ..config.model import RealKey


@dataclass(frozen=True, slots=True)
class Transition:
    """A real changed state (or, while up, its dynamic weight)."""

    key: RealKey
    up: bool
    weight: int | None
    reason: str
    at: int  # ms
    kind: str  # "up", "down" or "weight"


@dataclass(slots=True)
class RiseFall:
    """Consecutive-result counter of one real. Pure: fed `now`, returns transitions.

    Transition table (state, outcome) -> action, checked in `on_result`:
      (up,   ok)   -> reset failures; a new dynamic weight is reported as a "weight" transition
      (up,   fail) -> failures += 1; at `failurecount` go down   (ldirectord _service_down)
      (down, ok)   -> successes += 1; at `rise` go up (first success when still never-up with alpha)
      (down, fail) -> reset successes
      forced down  -> down at once, counters reset (ldirectord maintenancedir, checktype off)
    """

    key: RealKey
    failurecount: int = 1
    rise: int = 1
    up: bool = True
    weight: int | None = None  # dynamic weight from the last successful check, None = configured
    failures: int = 0
    successes: int = 0
    awaiting_first: bool = False  # alpha: down until the first success
    last_ok: bool | None = None
    last_reason: str = "not checked yet"
    last_check: int | None = None  # ms
    last_change: int | None = None  # ms
    checks: int = 0

    @classmethod
    def initial(cls, key: RealKey, failurecount: int, rise: int, alpha: bool, now: int) -> "RiseFall":
        if failurecount < 1 or rise < 1:
            raise ValueError(f"{key}: failurecount and rise must be at least 1, got {failurecount} and {rise}")
        return cls(key=key, failurecount=failurecount, rise=rise, up=not alpha, awaiting_first=alpha,
                   last_reason="alpha: down until the first successful check" if alpha else "not checked yet",
                   last_change=now)

    def health(self) -> RealHealth:
        """The fact the checks report for this real."""
        return RealHealth(self.up, self.weight, self.last_reason, self.last_change or 0)

    def retune(self, failurecount: int, rise: int) -> None:
        """Reload: new thresholds, same state and counters."""
        self.failurecount, self.rise = failurecount, rise

    def on_result(self, ok: bool, reason: str, now: int, weight: int | None = None) -> list[Transition]:
        self.checks += 1
        self.last_ok, self.last_reason, self.last_check = ok, reason, now
        handler = _TABLE.get((self.up, ok))
        if handler is None:  # unreachable with bools, kept as the table's contract
            raise ValueError(f"no transition for state up={self.up} outcome ok={ok}")
        return handler(self, reason, now, weight)

    def force_down(self, reason: str, now: int) -> list[Transition]:
        self.last_ok, self.last_reason, self.last_check = False, reason, now
        self.failures = self.successes = 0
        self.awaiting_first = False
        if not self.up:
            return []
        self.up = False
        self.last_change = now
        return [Transition(self.key, False, self.weight, reason, now, "down")]

    # -- table entries
    def _up_ok(self, reason: str, now: int, weight: int | None) -> list[Transition]:
        self.failures = 0
        # weight None = keep the current one (keepalived misc_dynamic: exit 0 leaves the weight)
        if weight is not None and weight != self.weight:
            self.weight = weight
            return [Transition(self.key, True, weight, reason, now, "weight")]
        return []

    def _up_fail(self, reason: str, now: int, weight: int | None) -> list[Transition]:
        self.failures += 1
        if self.failures < self.failurecount:
            return []  # ldirectord "Soft failure real server ... failure n/failurecount"
        self.up, self.failures, self.successes = False, 0, 0
        self.last_change = now
        return [Transition(self.key, False, self.weight, reason, now, "down")]

    def _down_ok(self, reason: str, now: int, weight: int | None) -> list[Transition]:
        self.successes += 1
        if weight is not None:
            self.weight = weight
        if self.successes < self.rise and not self.awaiting_first:
            return []
        self.up, self.failures, self.successes, self.awaiting_first = True, 0, 0, False
        self.last_change = now
        return [Transition(self.key, True, self.weight, reason, now, "up")]

    def _down_fail(self, reason: str, now: int, weight: int | None) -> list[Transition]:
        self.successes = 0
        return []


_TABLE = {
    (True, True): RiseFall._up_ok,
    (True, False): RiseFall._up_fail,
    (False, True): RiseFall._down_ok,
    (False, False): RiseFall._down_fail,
}


@dataclass(slots=True)
class CombinedCycle:
    """ldirectord `checktype = N`: N connect checks, then one negotiate check.

    ldirectord (`ld_setup`, `_check_real`) starts each real at 999999 connects so the first check
    negotiates; a successful negotiate resets the count to 0, each successful connect adds one, and
    a failed connect sets it back to 999999 so the next check negotiates at once. A failed
    negotiate leaves the count, so negotiation repeats until it succeeds."""

    n: int
    connects: int = field(default=999_999)

    def next_kind(self) -> str:
        return "negotiate" if self.connects >= self.n else "connect"

    def record(self, kind: str, ok: bool) -> None:
        if kind == "negotiate":
            if ok:
                self.connects = 0
        elif ok:
            self.connects += 1
        else:
            self.connects = 999_999
