"""Who owns each resource group, as this node sees it, and why that changed. Pure.

NodeCore calls `update(holders, actions, now)` after every input with the arbiter's holders of
each group (the nodes starting or holding it, this one included) and the actions of that input;
it returns an `OwnerChanged` for every group whose owner changed, with the reason read from the
same actions and the peers' announcements:

    group web: owner alpha -> none (node alpha dead)        the group has no owner for now
    group web: owner alpha -> beta (node alpha dead)        beta has it (`old` is the last owner)
    group web: owner none -> alpha (start)                  the first owner since this node started

The reason given when a group loses its owner is kept and repeated when the next owner takes
it, so the line that names the new owner says why the group moved. Several holders (a healed
partition) are listed together ("alpha+beta"); the split-brain rule then releases all but one.
`since(group)` is when the owner last changed (ms, the core's clock), for `hadirector status`;
`previous[group]` the owner before the current one (the balancer's new holder asks when that
one was last heard, to know which alerts it may not have sent: checks/alerts.py); `failovers[group]`
how often the group moved to a node that did not hold it (`hadirector_failovers_total`).
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .actions import NodeChanged, OwnerChanged, ReleaseGroup, StartCancelled
from .messages import Announcement, GroupState, Status


def _name(holders: tuple[str, ...]) -> str | None:
    return "+".join(holders) if holders else None


class Ownership:
    def __init__(self, groups: Iterable[str], now: int) -> None:
        self.holders: dict[str, tuple[str, ...]] = {g: () for g in groups}
        self.last: dict[str, str | None] = {g: None for g in self.holders}  # the last owner seen
        self.why: dict[str, str] = {}  # why the last owner lost the group (until a new one has it)
        self.previous: dict[str, str | None] = {g: None for g in self.holders}  # the owner before this one
        self._since: dict[str, int] = {g: now for g in self.holders}
        # failovers: the group moved to nodes none of which held it before (not a first start,
        # not a healed split brain keeping one of its holders); the metrics read it
        self.failovers: dict[str, int] = {g: 0 for g in self.holders}

    def since(self, group: str) -> int:
        return self._since[group]

    def update(self, holders: Mapping[str, list[str]], actions: list, now: int,
               peers: Mapping[str, Announcement], local: str) -> list[OwnerChanged]:
        out = []
        for g, now_holders in holders.items():
            new = tuple(now_holders)
            old = self.holders.get(g, ())
            if new == old:
                continue
            self.holders[g] = new
            self._since[g] = now
            if not new:
                why = self._why_lost(g, old, actions, peers, local)
                self.why[g] = why
                out.append(OwnerChanged(g, _name(old), None, why))
                continue
            if old:
                gone = tuple(n for n in old if n not in new)
                why = self._why_lost(g, gone, actions, peers, local) if gone else "split brain healed"
            else:
                why = self.why.pop(g, "start")
            before = _name(old) or self.last.get(g)
            if before is not None and not set(new) & set(before.split("+")):
                self.failovers[g] = self.failovers.get(g, 0) + 1
            out.append(OwnerChanged(g, before, _name(new), why))
            self.previous[g] = before
            self.last[g] = _name(new)
        return out

    @staticmethod
    def _why_lost(group: str, old: tuple[str, ...], actions: list, peers: Mapping[str, Announcement],
                  local: str) -> str:
        for a in actions:
            if isinstance(a, ReleaseGroup) and a.group == group and local in old:
                return a.reason
            if isinstance(a, StartCancelled) and a.group == group and local in old:
                return a.detail or "start cancelled"
        for a in actions:
            if isinstance(a, NodeChanged) and a.node in old and a.new == "dead":
                return f"node {a.node} dead"
        for n in old:
            if n == local:
                continue
            ann = peers.get(n)
            if ann is None:
                return f"node {n} gone"
            if ann.status == Status.LEAVING:
                return f"node {n} leaving"
            e = ann.group(group)
            if e.failed:
                return f"failed on {n}"
            if e.state == GroupState.STOPPING or e.to:
                return f"released by {n}" + (f" to {e.to}" if e.to else "")
        return "released"
