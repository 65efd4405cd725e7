"""The maintenance map: which real servers an operator put in maintenance, the same on every node.
Pure (no clock, no I/O; the driver persists it with `to_json`/`from_json`).

`hadirector real drain|disable|enable VIRTUAL REAL` sets a mark on the node it is run on; the
marks must survive a failover (the new holder balances without the drained real), a reload, a
restart and a partition. How:

- **A last-writer-wins register per real** (virtual, real): each mark carries a Lamport counter,
  greater than every counter the node that set it had seen, and that node's name; of two marks
  for one real the greater (counter, origin) wins, on every node alike. "enable" is a mark too
  (state `enabled`), so ending a maintenance wins over an older drain that a node cut off at the
  time still has; such marks are kept (one per real ever marked, a few bytes each). Merging is
  commutative, associative and idempotent, so nodes agree whatever the order, loss or repetition
  of the messages. Wall clocks are never compared (they differ between nodes; `since` is only
  shown).
- **Carried by the cluster messages** (messages.py, authenticated and replay-checked like every
  heartbeat): each message carries the 8-byte digest of the sender's map; a node whose peer's
  digest differs from its own adds its whole map to its messages until the digests agree, so a
  change reaches every live peer within a keepalive or two, and a node that was away catches up
  when it is heard again. No extra socket, no extra secret.
- **Persisted** by the driver in the state directory after each change, and loaded at start, so
  a restarted node keeps the marks even with no peer up.

Why not a versioned snapshot (one counter for the whole map)? Two nodes cut apart can each set a
mark; a snapshot would drop one of them when they meet, the per-real registers keep both.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

from .messages import MARK_STATES, Mark, encode_mark

MODES = ("drain", "disabled")  # states that put a real in maintenance; "enabled" ends it


class MaintenanceMap:
    def __init__(self, marks: Iterable[Mark] = (), counter: int = 0) -> None:
        self.marks: dict[tuple[str, str], Mark] = {}
        self.counter = counter  # the highest counter seen (Lamport clock)
        self._digest: bytes | None = None
        self.merge(marks)

    def __eq__(self, other) -> bool:
        return isinstance(other, MaintenanceMap) and self.marks == other.marks

    def set(self, virtual: str, real: str, state: str, origin: str, by: str = "", since: int = 0) -> Mark:
        """A local change (an operator's command on this node). Returns the new mark."""
        if state not in MARK_STATES:
            raise ValueError(f"maintenance state must be one of {', '.join(MARK_STATES)}, got {state!r}")
        self.counter += 1
        m = Mark(virtual, real, state, self.counter, origin, by, since)
        self.marks[m.key] = m
        self._digest = None
        return m

    def merge(self, marks: Iterable[Mark]) -> list[Mark]:
        """A peer's marks: keep the winner of each real. Returns the marks that changed ours."""
        changed = []
        for m in marks:
            if m.state not in MARK_STATES:
                continue
            self.counter = max(self.counter, m.counter)
            mine = self.marks.get(m.key)
            if mine is None or m.order > mine.order:
                self.marks[m.key] = m
                changed.append(m)
        if changed:
            self._digest = None
        return changed

    def active(self) -> dict[tuple[str, str], Mark]:
        """The reals in maintenance now: (virtual, real) -> mark (drain or disabled)."""
        return {k: m for k, m in self.marks.items() if m.state in MODES}

    def ordered(self) -> tuple[Mark, ...]:
        """Every mark, newest first (what a message carries first when space runs short)."""
        return tuple(sorted(self.marks.values(), key=lambda m: m.order, reverse=True))

    def digest(self) -> bytes:
        """8 bytes naming the map's content (b"" when it is empty): equal maps, equal digests."""
        if self._digest is None:
            if not self.marks:
                self._digest = b""
            else:
                h = hashlib.sha256()
                for key in sorted(self.marks):
                    h.update(encode_mark(self.marks[key]))
                self._digest = h.digest()[:8]
        return self._digest

    # ------------------------------------------------------------------ persistence (plain data)

    def to_json(self) -> dict:
        return {"counter": self.counter,
                "marks": [{"virtual": m.virtual, "real": m.real, "state": m.state, "counter": m.counter,
                           "origin": m.origin, "by": m.by, "since": m.since} for m in self.ordered()]}

    @classmethod
    def from_json(cls, data) -> "MaintenanceMap":
        """The map saved by to_json; ValueError naming what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("marks", []), list):
            raise ValueError("expected {\"counter\": N, \"marks\": [...]}")
        marks = []
        for i, m in enumerate(data.get("marks", [])):
            try:
                mark = Mark(str(m["virtual"]), str(m["real"]), str(m["state"]), int(m["counter"]),
                            str(m["origin"]), str(m.get("by", "")), int(m.get("since", 0)))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"marks[{i}]: {exc!r}") from None
            if mark.state not in MARK_STATES:
                raise ValueError(f"marks[{i}]: unknown state {mark.state!r}")
            marks.append(mark)
        counter = data.get("counter", 0)
        if not isinstance(counter, int) or counter < 0:
            raise ValueError(f"counter: expected a whole number, got {counter!r}")
        return cls(marks, counter)
