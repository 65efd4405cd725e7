"""ldirectord's (and keepalived's) service semantics, from the health of the reals: pure.

How it works: `evaluate(vs, health, quorum_up, readdquiescent)` says, for one virtual service,
what each real should be in the data plane and whether the fallback server is on:
- a real that is up keeps its configured weight (or the dynamic one from an external check);
- a real that is down is *quiescent* (kept with weight 0, so open connections finish) when
  `quiescent = yes`, else *removed* (ldirectord `_remove_service`; the data plane ends its
  connections, like LVS expire_nodest_conn). `readdquiescent` says whether a quiescent real that
  is absent from the data plane is added back at weight 0 (ldirectord `readdquiescent`);
- the fallback (sorry) server is on while no real is up (ldirectord `fallback_on`/`fallback_off`)
  and, with a quorum, while the quorum is lost (keepalived `update_quorum_state`: then the alive
  reals are withdrawn and the sorry server takes the traffic);
- checktype `on`: reals are always up; `off`: never (fallback still applies, as in ldirectord's
  code).
`ServiceTracker.observe(...)` remembers what must be remembered (quorum with hysteresis, the last
fallbackcommand run) and returns the commands to run: fallbackcommand start/stop (ldirectord
`do_fallback_command`: `cmd start|stop vip:vport protocol`, only on change; the first observation
runs the current one, as ldirectord does at start) and keepalived's quorum_up/quorum_down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..config.model import Fallback, Real, VirtualService
from .base import RealKey, real_key


@dataclass(frozen=True, slots=True)
class RealState:
    key: RealKey
    real: Real
    up: bool  # the check says up (and the quorum rule does not withdraw it)
    state: str  # "up", "quiescent" (weight 0, kept) or "removed"
    weight: int  # weight to set when present (0 when quiescent)
    readd: bool  # quiescent: add at weight 0 if absent from the data plane (readdquiescent)
    reason: str


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    virtual: str
    reals: tuple[RealState, ...]
    fallback: Fallback | None  # the sorry server to install now, None when off
    any_up: bool  # at least one real is up (ldirectord real_status defined)
    quorum_up: bool
    weight_sum: int  # sum of the weights of the reals that are up (keepalived quorum)


@dataclass(frozen=True, slots=True)
class RunCommand:
    """A command the driver runs (shell-split `command` plus `args`), with why."""

    command: str
    args: tuple[str, ...]
    why: str


def _real_up(vs: VirtualService, key: RealKey, health: Mapping) -> tuple[bool, int | None, str]:
    if vs.checktype == "on":
        return True, None, "checktype on"
    if vs.checktype == "off":
        return False, None, "checktype off"
    h = health.get(key)
    if h is None:  # not checked yet: ldirectord assumes up unless alpha (keepalived)
        return (not vs.alpha), None, "not checked yet"
    return h.up, h.weight, h.reason


def weight_sum(vs: VirtualService, health: Mapping) -> int:
    total = 0
    for real in vs.reals:
        up, dyn, _ = _real_up(vs, real_key(vs, real), health)
        if up:
            total += dyn if dyn is not None else real.weight
    return total


def evaluate(vs: VirtualService, health: Mapping, quorum_up: bool = True,
             readdquiescent: bool = False) -> ServiceHealth:
    states = []
    any_up = False
    total = 0
    withdraw = not quorum_up and vs.fallback is not None  # keepalived: sorry server replaces the reals
    for real in vs.reals:
        key = real_key(vs, real)
        up, dyn, reason = _real_up(vs, key, health)
        weight = dyn if dyn is not None else real.weight
        if up:
            any_up = True
            total += weight
            if withdraw:
                states.append(RealState(key, real, True, "removed", weight, False, "quorum lost: sorry server in use"))
            else:
                states.append(RealState(key, real, True, "up", weight, False, reason))
        elif vs.quiescent:
            states.append(RealState(key, real, False, "quiescent", 0, readdquiescent, reason))
        else:
            states.append(RealState(key, real, False, "removed", 0, False, reason))
    fallback = vs.fallback if (not any_up or withdraw) else None
    return ServiceHealth(vs.name, tuple(states), fallback, any_up, quorum_up, total)


def next_quorum(vs: VirtualService, total: int, was_up: bool) -> bool:
    """keepalived update_quorum_state: lost below quorum - hysteresis, gained at quorum + hysteresis."""
    if vs.quorum <= 0:
        return True
    if was_up and total < vs.quorum - vs.hysteresis:
        return False
    if not was_up and total >= vs.quorum + vs.hysteresis:
        return True
    return was_up


@dataclass
class _Memory:
    quorum_up: bool = True
    fallback_cmd: str | None = None


@dataclass
class ServiceTracker:
    """Per-service memory across observations; returns views and the commands to run."""

    readdquiescent: bool = False
    _mem: dict[str, _Memory] = field(default_factory=dict)

    def forget_missing(self, virtuals) -> None:
        names = {vs.name for vs in virtuals}
        for name in list(self._mem):
            if name not in names:
                del self._mem[name]

    def observe(self, vs: VirtualService, health: Mapping) -> tuple[ServiceHealth, list[RunCommand]]:
        mem = self._mem.setdefault(vs.name, _Memory())
        cmds: list[RunCommand] = []
        total = weight_sum(vs, health)
        q = next_quorum(vs, total, mem.quorum_up)
        if q != mem.quorum_up:
            mem.quorum_up = q
            cmd = vs.quorum_up if q else vs.quorum_down
            if cmd:
                cmds.append(RunCommand(cmd, (), f"{vs.name}: quorum {'gained' if q else 'lost'} "
                                                 f"(weight {total}, quorum {vs.quorum}, hysteresis {vs.hysteresis})"))
        view = evaluate(vs, health, mem.quorum_up, self.readdquiescent)
        wanted = "stop" if view.any_up else "start"
        if wanted != mem.fallback_cmd:
            mem.fallback_cmd = wanted
            if vs.fallbackcommand:
                where = f"{vs.address}:{vs.port}" if vs.fwmark is None else str(vs.fwmark)
                cmds.append(RunCommand(vs.fallbackcommand, (wanted, where, vs.protocol),
                                       f"{vs.name}: {'no real server is up' if wanted == 'start' else 'a real server is up'}"))
        return view, cmds

    def quorum_up(self, name: str) -> bool:
        mem = self._mem.get(name)
        return True if mem is None else mem.quorum_up
