"""Connectivity score from ping nodes and ping groups: a pure core fed with probe replies.

heartbeat's ha.cf `ping ADDR...` makes each address a "ping node", and `ping_group NAME ADDR...`
makes a set of addresses count as one node that is up while any member answers. ipfail then moves
the resources to the node that sees more of them. Here the score is the number of ping nodes plus
ping groups that are up; the arbiter gives groups to the node with the best score, so a director
whose uplink died (the second seed's "external interface down, heartbeat link fine" case) hands its
virtual IPs to one that can still reach the network.

Every `interval` ms (heartbeat pings each keepalive) `on_timer` returns one `Probe(address)` per
address; the driver sends an ICMP echo and calls `on_reply(address, now)` when the answer comes.
An address is down once it has not answered for `deadping` ms (ha.cf deadping, default deadtime).
At start-up an address that has not answered yet counts as up until `deadping` has passed: the
score does not dip while the first probes are in flight (optimistic start, documented in
docs/cluster.md). Time is int milliseconds, as in membership.py.
"""

from __future__ import annotations

from typing import Iterable

from .actions import PingChanged, Probe, ScoreChanged


class Connectivity:
    """Args:
        ping: addresses of the ping nodes (ha.cf `ping`);
        ping_groups: (name, addresses) pairs (ha.cf `ping_group`), or objects with .name/.addresses;
        interval: ms between probes of one address; deadping: ms without reply before it is down;
        now: the start time (ms).
    """

    def __init__(self, ping: Iterable[str], ping_groups: Iterable, *, interval: int, deadping: int,
                 now: int):
        if interval <= 0 or deadping <= 0:
            raise ValueError("interval and deadping must be positive")
        self.nodes: tuple[str, ...] = tuple(dict.fromkeys(ping))
        groups: list[tuple[str, tuple[str, ...]]] = []
        for g in ping_groups:
            name, addrs = (g.name, g.addresses) if hasattr(g, "name") else g
            if not addrs:
                raise ValueError(f"ping group {name!r} has no address")
            groups.append((name, tuple(addrs)))
        self.groups = tuple(groups)
        self.addresses: tuple[str, ...] = tuple(dict.fromkeys(
            list(self.nodes) + [a for _, addrs in self.groups for a in addrs]))
        self.interval = interval
        self.deadping = deadping
        self.start = now
        self._last: dict[str, int | None] = {a: None for a in self.addresses}
        self._next_probe = now
        self._addr_up, self._up = self._compute(now)
        self.score = self._score()

    @property
    def score_max(self) -> int:
        return len(self.nodes) + len(self.groups)

    def address_up(self, address: str, now: int) -> bool:
        last = self._last[address]
        return now < (self.start if last is None else last) + self.deadping

    def snapshot(self, now: int) -> dict:
        return {"score": self.score, "score_max": self.score_max,
                "nodes": {a: self._up[("node", a)] for a in self.nodes},
                "groups": {name: self._up[("group", name)] for name, _ in self.groups}}

    # ------------------------------------------------------------------ inputs

    def on_reply(self, address: str, now: int) -> list:
        """`address` answered a probe. Replies from addresses we do not ping are ignored."""
        if address not in self._last:
            return []
        last = self._last[address]
        self._last[address] = now if last is None else max(last, now)
        return self._refresh(now)

    def on_timer(self, now: int) -> list:
        out: list = []
        if self.addresses and now >= self._next_probe:
            out += [Probe(a) for a in self.addresses]
            self._next_probe += self.interval
            if self._next_probe <= now:
                self._next_probe = now + self.interval
        return out + self._refresh(now)

    def next_deadline(self) -> int | None:
        """None when there is nothing to ping."""
        if not self.addresses:
            return None
        times = [self._next_probe]
        for a, last in self._last.items():
            if self._addr_up[a]:  # only a live address has an expiry ahead
                times.append((self.start if last is None else last) + self.deadping)
        return min(times)

    # ------------------------------------------------------------------ internals

    def _compute(self, now: int) -> tuple[dict[str, bool], dict[str, bool]]:
        addr_up = {a: self.address_up(a, now) for a in self.addresses}
        up = {("node", a): addr_up[a] for a in self.nodes}
        for name, addrs in self.groups:
            up[("group", name)] = any(addr_up[a] for a in addrs)
        return addr_up, up

    def _score(self) -> int:
        return sum(1 for v in self._up.values() if v)

    def _refresh(self, now: int) -> list:
        self._addr_up, new = self._compute(now)
        out: list = [PingChanged(k[1], v) for k, v in new.items() if self._up.get(k) != v]
        self._up = new
        score = self._score()
        if score != self.score:
            out.append(ScoreChanged(self.score, score))
            self.score = score
        return out
