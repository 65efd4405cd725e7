"""Membership: which peers are alive, on which links. A pure core fed with packets and the clock.

Time is an int of milliseconds from any monotonic origin (the driver passes
`int(time.monotonic() * 1000)`); every method takes `now` and nothing reads a clock.

States of a peer node:

    init    never heard since we started (and initdead has not passed yet)
    up      heard within deadtime, but not taking part yet (it says it is starting or leaving)
    active  heard within deadtime and taking part in deciding who owns what (status ACTIVE)
    dead    silent on *every* link for deadtime (ha.cf deadtime), never heard within initdead
            (ha.cf initdead), or it said it was leaving (a clean shutdown)

States of a (peer, link) pair: init (never heard on that link), up (heard on it within deadtime),
dead (silent on it for deadtime, or never heard within initdead). A link going down changes nothing
else: a node is dead only when all its links are (heartbeat's rule, and issue 3's "one of two
links cut causes no failover").

Timers (ha.cf names, milliseconds):

    keepalive  we emit Send(link) for every link this often
    warntime   a peer silent this long gets one LateHeartbeat per episode of silence
    deadtime   a peer (or one of its links) silent this long is declared dead
    initdead   at start-up, a peer never heard is declared dead only after this long

If an input (a packet or the timer, whichever comes first) finds that nothing was fed to us for
more than two keepalives (our own loop stalled: SIGSTOP, a paused VM, an overloaded machine),
it reports `Stalled` and gives live peers two keepalives of grace instead of declaring them dead
for a silence nobody watched. Both inputs check: asyncio runs socket callbacks before due timers,
so a resumed daemon usually reads the datagrams that waited in its socket buffer first.

Start-up is "settled" (event `Settled`) once every peer was heard or initdead passed; the arbiter
acquires nothing before. A packet with a higher generation than the last one from that peer means
it restarted (`PeerRestarted`). Node transitions are the table `NODE_TRANSITIONS`; an input that
has no entry raises `TransitionError` naming the state and the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import HadirectorError
from .actions import (LateHeartbeat, LinkDown, LinkUp, NodeChanged, PeerRestarted, Send, Settled,
                      Stalled, TimingMismatch)
from .messages import Kind, Message, Status

INIT, UP, ACTIVE, DEAD = "init", "up", "active", "dead"

# node events: what happened, derived from a packet or the clock
HEARD = "heard"  # a packet whose sender is starting or leaving
HEARD_ACTIVE = "heard_active"  # a packet whose sender is active
SILENT = "silent"  # deadtime passed without a packet on any link
INITDEAD = "initdead"  # initdead passed and it was never heard
LEAVE = "leave"  # it said goodbye (Kind.LEAVE)

NODE_TRANSITIONS: dict[tuple[str, str], str] = {
    (INIT, HEARD): UP,
    (INIT, HEARD_ACTIVE): ACTIVE,
    (INIT, INITDEAD): DEAD,
    (INIT, LEAVE): DEAD,
    (UP, HEARD): UP,
    (UP, HEARD_ACTIVE): ACTIVE,
    (UP, SILENT): DEAD,
    (UP, LEAVE): DEAD,
    (ACTIVE, HEARD): UP,
    (ACTIVE, HEARD_ACTIVE): ACTIVE,
    (ACTIVE, SILENT): DEAD,
    (ACTIVE, LEAVE): DEAD,
    (DEAD, HEARD): UP,
    (DEAD, HEARD_ACTIVE): ACTIVE,
    (DEAD, LEAVE): DEAD,
}

LINK_TRANSITIONS: dict[tuple[str, str], str] = {
    (INIT, HEARD): UP,
    (INIT, INITDEAD): DEAD,
    (INIT, LEAVE): DEAD,
    (UP, HEARD): UP,
    (UP, SILENT): DEAD,
    (UP, LEAVE): DEAD,
    (DEAD, HEARD): UP,
    (DEAD, LEAVE): DEAD,
}


class TransitionError(HadirectorError, RuntimeError):
    """An input the state table has no entry for: a bug in the core or its driver."""

    def __init__(self, what: str, state: str, event: str):
        super().__init__(f"{what}: no transition from state {state!r} on event {event!r}")
        self.state = state
        self.event = event


def _step(table: dict, what: str, state: str, event: str) -> str:
    try:
        return table[(state, event)]
    except KeyError:
        raise TransitionError(what, state, event) from None


@dataclass
class _Link:
    state: str = INIT
    last: int | None = None  # ms of the last packet on this link


@dataclass
class _Node:
    links: dict[str, _Link]
    state: str = INIT
    last: int | None = None  # last packet on any link
    generation: int | None = None
    seq: int = -1  # highest sequence number seen in `generation`
    status: Status | None = None
    warned: bool = False
    timing_checked: bool = False
    heard_since_start: bool = False
    left: bool = False  # its last word was LEAVE: it stopped everything before it went


class Membership:
    """Liveness of the peers over several links.

    Args:
        local: this node's name; nodes: every cluster node (the local one is skipped);
        links: names of the heartbeat links (e.g. `Link.name` from the config);
        timing: an object with keepalive, deadtime, warntime, initdead in ms (`config.model.Timing`);
        now: the start time (ms).
    """

    def __init__(self, local: str, nodes: Iterable[str], links: Sequence[str], timing, now: int):
        self.local = local
        self.links = tuple(links)
        if not self.links:
            raise ValueError("membership needs at least one link")
        if len(set(self.links)) != len(self.links):
            raise ValueError(f"link names must be unique, got {', '.join(self.links)}")
        self.keepalive = int(timing.keepalive)
        self.deadtime = int(timing.deadtime)
        self.warntime = int(timing.warntime if timing.warntime is not None else self.deadtime // 2)
        self.initdead = int(timing.initdead if timing.initdead is not None else 2 * self.deadtime)
        if self.keepalive <= 0 or self.deadtime <= 0:
            raise ValueError("keepalive and deadtime must be positive")
        self.start = now
        self.peers: dict[str, _Node] = {
            n: _Node({link: _Link() for link in self.links}) for n in nodes if n != local}
        self.settled = False
        self._next_send = now  # the first heartbeat goes out at once
        self._last_input = now  # last on_packet/on_timer: to notice that we were not running

    # ------------------------------------------------------------------ queries

    def node_state(self, node: str) -> str:
        return self.peers[node].state

    def link_state(self, node: str, link: str) -> str:
        return self.peers[node].links[link].state

    def alive(self) -> set[str]:
        """Peers that are up or active."""
        return {n for n, p in self.peers.items() if p.state in (UP, ACTIVE)}

    def generation(self, node: str) -> int | None:
        return self.peers[node].generation

    def unaccounted(self) -> set[str]:
        """Peers that may run something we do not know of: never heard, or gone silent (dead by
        deadtime or initdead), but not those whose last word was a clean LEAVE."""
        return {n for n, p in self.peers.items() if p.state in (INIT, DEAD) and not p.left}

    def snapshot(self, now: int) -> dict:
        """Plain data for `hadirector status`."""
        return {n: {"state": p.state,
                    "generation": p.generation,
                    "silent_ms": None if p.last is None else now - p.last,
                    "links": {name: lk.state for name, lk in p.links.items()}}
                for n, p in self.peers.items()}

    # ------------------------------------------------------------------ inputs

    def on_packet(self, link: str, msg: Message, now: int) -> list:
        """An authenticated, non-replayed packet from a peer arrived on `link`."""
        node = self.peers.get(msg.node)
        if node is None:
            raise ValueError(f"packet from {msg.node!r}, which is not a peer of {self.local!r}")
        if link not in node.links:
            raise ValueError(f"packet on unknown link {link!r}; links are {', '.join(self.links)}")
        out: list = self.note_input(now)
        if node.generation is not None and msg.generation > node.generation:
            out.append(PeerRestarted(msg.node, node.generation, msg.generation))
            node.seq = -1
            node.timing_checked = False
        if node.generation is None or msg.generation > node.generation:
            node.generation = msg.generation
        elif msg.generation < node.generation:
            return out  # an old generation (the codec normally drops these): not a sign of life
        newest = msg.seq > node.seq
        if newest:
            node.seq = msg.seq
            node.status = msg.announcement.status
        node.heard_since_start = True
        if msg.kind == Kind.LEAVE:
            if newest:
                node.left = True
                out += self._leave(msg.node, node)
            return out + self._check_settled(now)
        if not newest and node.state == DEAD:
            return out + self._check_settled(now)  # a late copy of an old packet: no sign of life
        node.left = False
        if not node.timing_checked:
            node.timing_checked = True
            if (msg.keepalive_ms, msg.deadtime_ms) != (self.keepalive, self.deadtime):
                out.append(TimingMismatch(msg.node, msg.keepalive_ms, msg.deadtime_ms))
        lk = node.links[link]
        lk.last = now if lk.last is None else max(lk.last, now)
        if lk.state != UP:
            lk.state = _step(LINK_TRANSITIONS, f"link {link} to {msg.node}", lk.state, HEARD)
            out.append(LinkUp(msg.node, link))
        node.last = now if node.last is None else max(node.last, now)
        node.warned = False
        event = HEARD_ACTIVE if node.status == Status.ACTIVE else HEARD
        out += self._move(msg.node, node, event, f"heard on {link}")
        out += self._check_settled(now)
        return out

    def on_timer(self, now: int) -> list:
        out: list = self.note_input(now)
        if now >= self._next_send:
            out += [Send(link) for link in self.links]
            self._next_send += self.keepalive
            if self._next_send <= now:  # we were late (a busy loop): no burst, just carry on
                self._next_send = now + self.keepalive
        for name, node in self.peers.items():
            if node.state == DEAD:
                continue
            if node.last is None:
                if now >= self.start + self.initdead:
                    for lname, lk in node.links.items():
                        lk.state = _step(LINK_TRANSITIONS, f"link {lname} to {name}", lk.state, INITDEAD)
                        out.append(LinkDown(name, lname, "never heard within initdead"))
                    out += self._move(name, node, INITDEAD, f"never heard within initdead "
                                                            f"({self.initdead} ms)")
                continue
            for lname, lk in node.links.items():
                if lk.state == UP and now >= lk.last + self.deadtime:
                    lk.state = _step(LINK_TRANSITIONS, f"link {lname} to {name}", lk.state, SILENT)
                    out.append(LinkDown(name, lname, f"silent {now - lk.last} ms"))
                elif lk.state == INIT and now >= self.start + self.initdead:
                    lk.state = _step(LINK_TRANSITIONS, f"link {lname} to {name}", lk.state, INITDEAD)
                    out.append(LinkDown(name, lname, "never heard within initdead"))
            if now >= node.last + self.deadtime:
                out += self._move(name, node, SILENT, f"silent on every link for {now - node.last} ms")
            elif not node.warned and now >= node.last + self.warntime:
                node.warned = True
                out.append(LateHeartbeat(name, now - node.last))
        out += self._check_settled(now)
        return out

    def next_deadline(self) -> int:
        """The earliest `now` at which on_timer has something to do."""
        times = [self._next_send]
        if not self.settled:
            times.append(self.start + self.initdead)
        for node in self.peers.values():
            if node.state == DEAD:
                continue
            if node.last is None:
                times.append(self.start + self.initdead)
                continue
            times.append(node.last + self.deadtime)
            if not node.warned:
                times.append(node.last + self.warntime)
            for lk in node.links.values():
                if lk.state == UP:
                    times.append(lk.last + self.deadtime)
                elif lk.state == INIT:
                    times.append(self.start + self.initdead)
        return min(times)

    # ------------------------------------------------------------------ internals

    def note_input(self, now: int) -> list:
        """Every input first (NodeCore calls it for inputs that are not packets or the timer too):
        were we fed nothing for more than two keepalives? The timer fires at least every
        keepalive while we run, so a longer gap means we did not run."""
        gap = now - self._last_input
        self._last_input = max(self._last_input, now)
        return self._overslept(now, gap) if gap > 2 * self.keepalive else []

    def _overslept(self, now: int, gap: int) -> list:
        """We were not running for `gap` ms (a stalled loop, SIGSTOP, a suspended VM): the
        silence we did not watch is not the peers' fault, and their packets may be waiting in
        the socket buffers. Give every live peer and link two keepalives from now to be heard
        before deadtime can strike (heartbeat resets its timers after a clock jump the same way)."""
        floor = now - self.deadtime + 2 * self.keepalive
        for node in self.peers.values():
            if node.state in (UP, ACTIVE) and node.last is not None and node.last < floor:
                node.last = floor
                for lk in node.links.values():
                    if lk.state == UP and lk.last is not None and lk.last < floor:
                        lk.last = floor
        return [Stalled(gap)]

    def _move(self, name: str, node: _Node, event: str, reason: str) -> list:
        old = node.state
        node.state = _step(NODE_TRANSITIONS, f"node {name}", old, event)
        return [NodeChanged(name, old, node.state, reason)] if node.state != old else []

    def _leave(self, name: str, node: _Node) -> list:
        out = []
        for lname, lk in node.links.items():
            if lk.state != DEAD:
                lk.state = _step(LINK_TRANSITIONS, f"link {lname} to {name}", lk.state, LEAVE)
                out.append(LinkDown(name, lname, "node left"))
        return out + self._move(name, node, LEAVE, "left the cluster (clean shutdown)")

    def _check_settled(self, now: int) -> list:
        if self.settled:
            return []
        if all(p.heard_since_start for p in self.peers.values()):
            self.settled = True
            return [Settled("every peer heard")]
        if now >= self.start + self.initdead:
            self.settled = True
            silent = sorted(n for n, p in self.peers.items() if not p.heard_since_start)
            return [Settled(f"initdead passed; never heard: {', '.join(silent)}")]
        return []
