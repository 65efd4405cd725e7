"""Fencing before takeover: a peer that went silent may still be alive (hung, or cut off on the
heartbeat links only), so before this node takes a group over without that peer's grant, the
peer is powered off by a fence device, and the takeover waits until that succeeded. Pure and
clock-fed (ms); the arbiter owns one when fencing is configured, the daemon runs the devices
(daemon/fencing.py) and reports back with `result`.

Pacemaker's rule (Pacemaker Explained, chapter Fencing, stonith-enabled: a lost node is fenced
before its resources are recovered elsewhere; fence-agents doc/FenceAgentAPI.md for the
devices): a peer is fenced when it is
unaccounted for (cluster/membership.py `unaccounted`: silent, or never heard since start-up,
and not left cleanly, as Pacemaker's startup-fencing) while this node wants to take a group
over; a peer that leaves cleanly (LEAVE) is never fenced. A fence that fails blocks the takeover
and is retried after a growing pause (RETRY_FIRST doubling up to RETRY_MAX); the peer counts as
fenced until it is heard again.

Two nodes that lose each other both want to fence the other; if both fired at once, both could
die. As Pacemaker's priority-fencing-delay (fencing of "the lost nodes with the highest total
resource priority" is delayed, so "the more significant nodes potentially win any fencing
match") with pcmk_delay_base's static order as the tie-break, the fence of a target is delayed
by `delay` ms when the target ranks above this node: it held more groups when last heard, or as
many and comes first in the cluster's node list. In a two-node cut both sides see the same
counts, so exactly one of the two fences waits, and the holder of the groups wins. `delay` must
be longer than a fence takes.

States of a target: ok (nothing to do), waiting (a fence is due at `due`), running (Fence
returned, no result yet), failed (retry at `due`), fenced (done, until heard again).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .actions import Fence, FenceResult

OK, WAITING, RUNNING, FAILED, FENCED = "ok", "waiting", "running", "failed", "fenced"
RETRY_FIRST = 2_000
RETRY_MAX = 60_000
HISTORY = 20


@dataclass
class _Target:
    state: str = OK
    due: int = 0
    attempts: int = 0  # failed attempts in a row
    since: int = 0


class Fencer:
    """Args: local, nodes (cluster order), delay (ms, see above), targets (the peers this node
    has a fence device for; None: all)."""

    def __init__(self, local: str, nodes, delay: int, *, targets=None, retry_first: int = RETRY_FIRST,
                 retry_max: int = RETRY_MAX):
        self.local = local
        self.nodes = tuple(nodes)
        self.delay = delay
        self.retry_first = retry_first
        self.retry_max = retry_max
        # the peers a device can fence from here (None: every peer); others are taken over unfenced
        self.targets = {n: _Target() for n in self.nodes if n != local and (targets is None or n in targets)}
        self.held: dict[str, int] = {}  # groups each node held when last heard (local: now)
        self.history: deque[dict] = deque(maxlen=HISTORY)
        self._wanted: set[str] = set()

    # ------------------------------------------------------------------ queries

    def delayed(self, target: str) -> bool:
        """Does our fence of `target` wait `delay` (it ranks above us)?"""
        def rank(n: str) -> tuple:
            return (self.held.get(n, 0), -self.nodes.index(n))
        return rank(target) > rank(self.local)

    def clear(self, targets) -> bool:
        """Have all of `targets` been fenced (a takeover may go on)?"""
        return all(self.targets[t].state == FENCED for t in targets if t in self.targets)

    def next_deadline(self) -> int | None:
        times = [t.due for n, t in self.targets.items() if t.state in (WAITING, FAILED) and n in self._wanted]
        return min(times) if times else None

    def snapshot(self, now: int) -> dict:
        return {"delay_ms": self.delay,
                "delayed": [n for n in self.targets if self.delayed(n)],
                "peers": {n: {"state": t.state, "failed_attempts": t.attempts,
                              "next_attempt_in_ms": max(0, t.due - now) if t.state in (WAITING, FAILED) else None,
                              "since_age_ms": now - t.since}
                          for n, t in self.targets.items()},
                "history": [dict(h, age_ms=now - h["at"]) for h in self.history]}

    # ------------------------------------------------------------------ inputs

    def heard(self, alive, held: dict[str, int]) -> None:
        """The live peers (membership) and how many groups each node holds now. A peer heard
        again needs no fence (a fence result that comes later is still recorded)."""
        for n in alive:
            if n in self.targets and self.targets[n].state != OK:
                self.targets[n] = _Target()
        for n, c in held.items():
            if n == self.local or n in alive:
                self.held[n] = c

    def want(self, targets, now: int) -> list:
        """This node wants to take over while `targets` are unaccounted for: Fence each that is
        due. Targets no longer wanted that are only waiting go back to ok."""
        targets = {t for t in targets if t in self.targets}
        self._wanted = targets
        out: list = []
        for n, t in self.targets.items():
            if n not in targets:
                if t.state == WAITING:
                    self.targets[n] = _Target()
                continue
            if t.state == OK:
                t.state, t.since = WAITING, now
                t.due = now + (self.delay if self.delayed(n) else 0)
            if t.state in (WAITING, FAILED) and now >= t.due:
                t.state = RUNNING
                out.append(Fence(n, t.attempts + 1, self.delay if self.delayed(n) and t.attempts == 0 else 0))
        return out

    def result(self, target: str, ok: bool, now: int, detail: str = "", device: str = "",
               took_ms: int = 0) -> list:
        """The driver ran Fence(target): ok, or failed with `detail`."""
        if target not in self.targets:
            raise ValueError(f"fence result for {target!r}, which is not a peer")
        t = self.targets[target]
        self.history.append({"target": target, "ok": ok, "at": now, "detail": detail, "device": device,
                             "took_ms": took_ms, "attempt": t.attempts + 1})
        retry = None
        if t.state != RUNNING:
            pass  # heard again meanwhile (back to ok): recorded only
        elif ok:
            t.state, t.attempts, t.since = FENCED, 0, now
        else:
            t.attempts += 1
            retry = min(self.retry_max, self.retry_first * 2 ** (t.attempts - 1))
            t.state, t.due, t.since = FAILED, now + retry, now
        return [FenceResult(target, ok, detail, device, t.attempts, retry)]
