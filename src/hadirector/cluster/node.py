"""NodeCore: one cluster node's whole protocol (codec + membership + connectivity + arbiter), pure.

This is what the daemon drives. It owns no socket, no clock and no resource; every method takes
`now` (int milliseconds, monotonic) and returns a list of actions and events (actions.py):

    core = NodeCore(config, "alpha", generation=statedir.next_generation(dir), now=ms())
    handle(core.start(ms()))                   # StopStale for every group, first heartbeats
    loop:
        datagram on link L   -> handle(core.on_datagram(L, data, ms()))
        timer fired          -> handle(core.on_timer(ms()))
        group start ok/fail  -> handle(core.group_started(g, ms()) / core.group_failed(g, ms(), why))
        group fully stopped  -> handle(core.group_stopped(g, ms()))        (ReleaseDone)
        ping reply from A    -> handle(core.probe_reply(A, ms()))
        Fence(peer) done     -> handle(core.on_fence_result(peer, ok, ms(), detail, device))
        qdevice client says  -> handle(core.on_witness(True|False|None, ms()))  (quorum.py)
        ARP/ND about a VIP   -> handle(core.address_seen(addr, "claim"|"probe", mac, own_mac, ifname, ms()))
        port unreachable     -> handle(core.link_unreachable(L, addr, port, ms()))   (ICMP errors)
        operator             -> handle(core.standby(which, ms()) / core.takeover(which, ms()))
        SIGTERM              -> handle(core.shutdown(ms())); exit on LeaveComplete
        re-arm one timer at core.next_deadline()

    handle(actions): Transmit(link, data) -> send data to the link's peers; Probe(addr) -> ICMP
    echo; ProbeAddress(addr) -> RFC 5227 ARP probe / DAD solicitation; Lease(g, addrs, until) ->
    renew the VIP lease; AcquireGroup/ReleaseGroup/StopStale -> resource manager; Reannounce ->
    gratuitous ARP for the group's addresses; everything else -> log (PacketDropped rate-limited).

Links are named by `Link.name` ("ucast:eth0", "serial:/dev/ttyS0"); when two links share a name
the later ones get "#2", "#3"... `core.links` maps each name to its config.model.Link.
If `authenticated` is False (authkeys crc) the driver should log a loud warning at start.
"""

from __future__ import annotations

from dataclasses import replace

from .actions import (AnnounceNow, LateHeartbeat, LeaveComplete, LinkDown, LinkUp, MaintenanceChanged,
                      NodeChanged, NothingListens, PacketDropped, PeerRestarted, QuorumChanged,
                      ScoreChanged, Send, Settled, Stalled, Transmit)
from .arbiter import Arbiter, DEFAULT_REQUEST_TIMEOUT
from .auth import Authenticator
from .fencing import Fencer
from .connectivity import Connectivity
from .guard import GuardTiming
from .maintenance import MaintenanceMap
from .membership import UP, Membership
from .messages import DEFAULT_MAX_SIZE, BadMessage, Codec, Kind, Message, encode_mark, encoded_size
from .ownership import Ownership
from .quorum import Quorum

LEAVE_COPIES = 2  # LEAVE is sent this many times per link: a lost one costs the peer a deadtime
# An episode of ICMP port unreachable ends after this long without one. Linux sends about one
# ICMP error a second per destination (net.ipv4.icmp_ratelimit, 1000 ms), so a deadtime of quiet
# proves nothing.
UNREACHABLE_EPISODE = 10_000


def group_addresses(groups) -> dict[str, tuple[str, ...]]:
    """The VIP addresses of each group (config.model.Group), in haresources order."""
    return {g.name: tuple(str(r.address) for r in g.resources if getattr(r, "kind", "") == "vip")
            for g in groups}


def link_names(links) -> list[str]:
    names: list[str] = []
    for link in links:
        base = link.name
        name, i = base, 1
        while name in names:
            i += 1
            name = f"{base}#{i}"
        names.append(name)
    return names


class NodeCore:
    """Args:
        config: a config.model.Config (cluster + groups);
        node: this node's name (one of config.cluster.nodes);
        generation: this run's boot counter (daemon.statedir.next_generation);
        now: start time, ms;
        deadping: ms before a silent ping node counts as down (default: deadtime, as heartbeat);
        max_size: datagram size limit; request_timeout: ms a takeover request waits.
    """

    def __init__(self, config, node: str, generation: int, now: int, *, deadping: int | None = None,
                 max_size: int = DEFAULT_MAX_SIZE, request_timeout: int = DEFAULT_REQUEST_TIMEOUT,
                 maintenance: MaintenanceMap | None = None):
        c = config.cluster
        if node not in c.nodes:
            raise ValueError(f"node {node!r} is not in the cluster; nodes are {', '.join(c.nodes)}")
        self.node = node
        self.generation = generation
        self.links = dict(zip(link_names(c.links), c.links))
        t = c.timing
        self.auth = Authenticator.from_config(c.auth)
        self.codec = Codec(c.name, node, generation, c.nodes, self.auth, keepalive_ms=t.keepalive,
                           deadtime_ms=t.deadtime, max_size=max_size)
        self.membership = Membership(node, c.nodes, list(self.links), t, now)
        self.connectivity = Connectivity(c.ping, c.ping_groups, interval=t.keepalive,
                                         deadping=deadping or t.deadtime, now=now)
        self.guard_timing = GuardTiming.derive(t.keepalive, t.deadtime)
        # fencing.py: the peers this node has a fence device for (config.model fence_devices_for)
        fencer = None
        if c.fencing is not None:
            from ..config.model import fence_devices_for
            fencer = Fencer(node, c.nodes, c.fencing.delay,
                            targets=[n for n in c.nodes if fence_devices_for(c.fencing, node, n, c.nodes)])
        self.arbiter = Arbiter(node, c.nodes, config.groups, c.auto_failback,
                               request_timeout=request_timeout, deaf_after=t.deadtime,
                               addresses=group_addresses(config.groups),
                               guard_timing=self.guard_timing, fencer=fencer)
        self.arbiter.unaccounted = self.membership.unaccounted()
        self.arbiter.score = self.connectivity.score
        self.arbiter.score_max = self.connectivity.score_max
        # votes of this node's partition, and the witness (quorum.py); the arbiter obeys its mode
        self.quorum = Quorum(c.quorum, c.nodes, node, now)
        self.arbiter.set_quorum(self.quorum.mode, now, self._quorum_reason(), evaluate=False)
        # quorum.py renew_until: the last lease renewed runs out a keepalive before the majority's
        # deadtime (counted from our last heartbeat it heard)
        self.renew_window = max(t.keepalive, t.deadtime - self.guard_timing.lease - t.keepalive)
        self.ownership = Ownership(self.arbiter.local_groups, now)
        # real servers in maintenance, the same on every node (maintenance.py); peers' digests
        self.maintenance = maintenance if maintenance is not None else MaintenanceMap()
        self._peer_digest: dict[str, bytes] = {}
        # when each node's state and each link's state last changed (ms), for `status`
        self.changed: dict[tuple[str, ...], int] = {("node", node): now}
        self.left = False
        self._newest: dict[str, tuple[int, int]] = {}
        self._heard_newest: dict[str, int] = {}  # peer -> when its newest message came (renew_until)
        # per link: drops by reason, the last bad-MAC sender, ICMP errors per destination
        self.link_drops: dict[str, dict[str, int]] = {n: {} for n in self.links}
        self.last_bad_auth: dict[str, dict] = {}
        self.unreachable: dict[str, dict[tuple[str, int], dict]] = {n: {} for n in self.links}
        self._started = False
        self._check_size()

    # ------------------------------------------------------------------ queries

    @property
    def authenticated(self) -> bool:
        """False with authkeys crc: anybody on a heartbeat link can forge messages."""
        return self.auth.authenticates

    @property
    def counters(self):
        """Packets decoded ("ok") and dropped, per reason (messages.REASONS)."""
        return self.codec.counters

    def status(self, now: int) -> dict:
        """Plain data for `hadirector status` (JSON-serialisable). Times of the last changes are
        ages in ms (`*_age_ms`: how long ago), so the driver can show wall-clock times."""
        peers = self.membership.snapshot(now)
        for n, where in self.arbiter.answering_elsewhere().items():
            if n in peers:
                peers[n]["alive_on"] = where  # "heartbeat lost, alive on eth0"
        for name, p in peers.items():
            p["changed_age_ms"] = now - self.changed[("node", name)] if ("node", name) in self.changed else None
            p["links_changed_age_ms"] = {ln: now - self.changed[("link", name, ln)]
                                         for ln in p["links"] if ("link", name, ln) in self.changed}
            ann = self.arbiter.peers.get(name)
            p["score"] = None if ann is None else ann.score
            p["score_max"] = None if ann is None else ann.score_max
            p["failed_groups"] = [] if ann is None else sorted(e.name for e in ann.groups if e.failed)
        links = {}
        for name in self.links:
            links[name] = {"dropped": dict(self.link_drops[name])}
            if name in self.last_bad_auth:
                links[name]["last_bad_auth"] = dict(self.last_bad_auth[name])
            links[name]["unreachable"] = [
                {"address": a, "port": p, "count": u["count"], "silent_ms": now - u["last"],
                 "reported": u["reported"]} for (a, p), u in self.unreachable[name].items()]
        arb = self.arbiter.snapshot()
        for g, info in arb["groups"].items():
            info["owner_age_ms"] = now - self.ownership.since(g)
        return {"node": self.node, "generation": self.generation,
                "settled": self.membership.settled, "left": self.left,
                "changed_age_ms": now - self.changed[("node", self.node)],
                "score_max": self.connectivity.score_max,
                "peers": peers, "links": links,
                "connectivity": self.connectivity.snapshot(now),
                "quorum": self.quorum.snapshot(now),
                **arb,
                "lease_ms": self.guard_timing.lease,
                **({"fencing": self.arbiter.fencer.snapshot(now)} if self.arbiter.fencer is not None else {}),
                "packets": dict(self.codec.counters)}

    def next_deadline(self) -> int:
        times = [self.membership.next_deadline()]
        for t in (self.connectivity.next_deadline(), self.arbiter.next_deadline(),
                  self.quorum.next_deadline()):
            if t is not None:
                times.append(t)
        return min(times)

    # ------------------------------------------------------------------ inputs

    def start(self, now: int) -> list:
        """Call once, first: StopStale for every group and the first heartbeats."""
        if self._started:
            raise RuntimeError("NodeCore.start() called twice")
        self._started = True
        out = self.arbiter.start(now)
        out += self.membership.on_timer(now)
        out += self.connectivity.on_timer(now)
        if self.membership.settled:  # a cluster of one
            out += self.arbiter.settle(now)
        return self._finish(out, now)

    def on_datagram(self, link: str, data: bytes, now: int, source: str = "") -> list:
        """One datagram from `link`; `source` is the sender's address (for messages only)."""
        if self.left:
            return []
        try:
            msg = self.codec.decode(data)
        except BadMessage as exc:
            drops = self.link_drops.setdefault(link, {})
            drops[exc.reason] = drops.get(exc.reason, 0) + 1
            if exc.reason == "bad_auth":
                self.last_bad_auth[link] = {"source": source, "detail": exc.detail, "at": now}
            return [PacketDropped(link, exc.reason, exc.detail, source)]
        key = (msg.generation, msg.seq)
        newest = key > self._newest.get(msg.node, (-1, -1))
        if newest:
            self._newest[msg.node] = key
            if msg.kind != Kind.LEAVE:
                self._heard_newest[msg.node] = now  # a late copy proves nothing about now
        events = self.membership.on_packet(link, msg, now)
        news = {msg.node: msg.announcement} if newest and msg.kind != Kind.LEAVE else {}
        out = self._after_membership(events, now, news)
        if newest:
            self._peer_digest[msg.node] = msg.announcement.maint_digest
        if msg.announcement.marks:
            changed = self.maintenance.merge(msg.announcement.marks)
            if changed:
                out += [MaintenanceChanged(tuple(changed)), AnnounceNow()]
        return self._finish(out, now)

    def on_timer(self, now: int) -> list:
        if self.left:
            return []
        quiet = max(UNREACHABLE_EPISODE, 2 * self.membership.deadtime)
        for per in self.unreachable.values():
            for key in [k for k, u in per.items() if now - u["last"] >= quiet]:
                del per[key]  # the episode is over: a new one is reported again
        out = self.connectivity.on_timer(now)
        out += self._after_membership(self.membership.on_timer(now), now, {})
        if self.quorum.on_timer(now):  # a witness sync timed out
            self._renew_limit()
            out += self._quorum_changed(now)
            self.arbiter.set_quorum(self.quorum.mode, now, self._quorum_reason(), evaluate=False)
        out += self.arbiter.on_timer(now)
        return self._finish(out, now)

    def probe_reply(self, address: str, now: int) -> list:
        pre = self._begin(now)
        return self._finish(pre + self.connectivity.on_reply(address, now), now)

    def on_witness(self, vote: bool | None, now: int, members=None) -> list:
        """The quorum device client's report (issue 11's qdevice-net client): True, qnetd gives
        this node its vote; False, it gives it to the other side; None, qnetd is unreachable or
        the state is unknown. `members`: the membership the vote is for (QuorumChanged.members
        as sent to qnetd); a report for other members is ignored. After each membership change
        the core waits for a report (quorum.py, "syncing"). ValueError if no device is configured."""
        pre = self._begin(now)
        out = list(pre)
        if self.quorum.on_witness(vote, now, members):
            self._renew_limit()
            out += self._quorum_changed(now)
            out += self.arbiter.set_quorum(self.quorum.mode, now, self._quorum_reason())
        return self._finish(out, now)

    def address_seen(self, address: str, kind: str, mac: str, own_mac: str, where: str,
                     now: int) -> list:
        """Another MAC used ("claim") or probed for ("probe") one of our groups' addresses."""
        pre = self._begin(now)
        return self._finish(pre + self.arbiter.address_seen(address, kind, mac, own_mac, where, now), now)

    def link_unreachable(self, link: str, address: str, port: int, now: int) -> list:
        """Our datagram on `link` to address:port drew ICMP port unreachable. Reported
        (NothingListens) once per episode while no peer is heard on that link; an episode ends
        after UNREACHABLE_EPISODE (or twice deadtime, if longer) without such errors."""
        if link not in self.unreachable:
            raise ValueError(f"unknown link {link!r}; links are {', '.join(self.links)}")
        pre = self._begin(now)
        out = self._finish(pre, now) if pre else []
        u = self.unreachable[link].setdefault((address, port), {"count": 0, "first": now,
                                                               "last": now, "reported": False})
        u["count"] += 1
        u["last"] = now
        heard = any(self.membership.link_state(n, link) == UP for n in self.membership.peers)
        if u["reported"] or heard:
            return out
        u["reported"] = True
        return out + [NothingListens(link, address, port, u["count"])]

    def group_started(self, group: str, now: int) -> list:
        pre = self._begin(now)
        return self._finish(pre + self.arbiter.group_started(group, now), now)

    def group_failed(self, group: str, now: int, detail: str = "") -> list:
        pre = self._begin(now)
        return self._finish(pre + self.arbiter.group_failed(group, now, detail), now)

    def group_stopped(self, group: str, now: int) -> list:
        """ReleaseDone: the group's resources are fully stopped here."""
        pre = self._begin(now)
        return self._finish(pre + self.arbiter.group_stopped(group, now), now)

    def on_fence_result(self, peer: str, ok: bool, now: int, detail: str = "", device: str = "",
                        took_ms: int = 0) -> list:
        """The driver ran Fence(peer) with the fence devices: ok, or failed with `detail`."""
        pre = self._begin(now)
        return self._finish(pre + self.arbiter.fence_result(peer, ok, now, detail, device, took_ms), now)

    def standby(self, which: str, now: int) -> list:
        pre = self._begin(now)
        return self._finish(pre + self.arbiter.standby(which, now), now)

    def takeover(self, which: str, now: int) -> list:
        pre = self._begin(now)
        return self._finish(pre + self.arbiter.takeover(which, now), now)

    def set_maintenance(self, virtual: str, real: str, state: str, now: int, by: str = "",
                        since: int = 0) -> list:
        """An operator's maintenance mark (drain, disabled, enabled) for one real, set here and
        sent to the peers. ValueError when the map would no longer fit in a message."""
        trial = MaintenanceMap(self.maintenance.marks.values(), self.maintenance.counter)
        mark = trial.set(virtual, real, state, self.node, by, since)
        if len(trial.marks) > len(self.maintenance.marks):
            room = self._mark_room()
            need = sum(len(encode_mark(m)) for m in trial.marks.values())
            if need > room:
                raise ValueError(f"{len(trial.marks)} maintenance marks would not fit in a heartbeat "
                                 f"message ({need} bytes, {room} free): enable some reals first")
        pre = self._begin(now)
        self.maintenance.merge([mark])
        return self._finish(pre + [MaintenanceChanged((mark,), local=True), AnnounceNow()], now)

    def shutdown(self, now: int) -> list:
        """Release every group; once all are stopped, tell the peers and return LeaveComplete."""
        pre = self._begin(now)
        return self._finish(pre + self.arbiter.shutdown(now), now)

    # ------------------------------------------------------------------ internals

    def _begin(self, now: int) -> list:
        """Every input first: did this node stall since the last one? Whichever input comes first
        after a resume (a buffered datagram, an ARP frame that waited in the address watch, a
        resource report, the timer) must see it before anything is decided, or a node that lost
        its lease renews it before it knows it may have lost the group too."""
        if self.left:
            return []
        events = self.membership.note_input(now)
        self._renew_limit()
        return self._after_membership(events, now, {}) if events else []

    def _renew_limit(self) -> None:
        """Tell the arbiter until when it may renew leases (quorum.py renew_until)."""
        self.arbiter.renew_until = self.quorum.renew_until(
            {n: self._heard_newest.get(n) for n in self.quorum.members}, self.renew_window)

    def _after_membership(self, events: list, now: int, news: dict) -> list:
        restarted = [e.node for e in events if isinstance(e, PeerRestarted)]
        changed = any(isinstance(e, (NodeChanged, PeerRestarted)) for e in events)
        out = list(events)
        if changed and self.quorum.set_members(self.membership.alive(), now):
            # before the arbiter sees the new members, so it never acts on a stale verdict
            out += self._quorum_changed(now)
            self.arbiter.set_quorum(self.quorum.mode, now, self._quorum_reason(), evaluate=False)
        self._renew_limit()
        if any(isinstance(e, Stalled) for e in events):
            out += self.arbiter.stalled(now)
        if changed or news:
            out += self.arbiter.set_alive(self.membership.alive(), now, news, restarted,
                                          unaccounted=self.membership.unaccounted())
        for e in events:
            if isinstance(e, LateHeartbeat):
                out += self.arbiter.peer_late(e.node, now)
        if any(isinstance(e, Settled) for e in events):
            out += self.arbiter.settle(now)
        # a peer that (re)appears learns our state at once instead of at the next keepalive
        if any(isinstance(e, NodeChanged) and e.old in ("init", "dead") or isinstance(e, PeerRestarted)
               for e in events):
            out.append(AnnounceNow())
        return out

    def _quorum_changed(self, now: int) -> list:
        v = self.quorum.verdict
        return [QuorumChanged(v.quorate, v.votes, v.expected, v.needed, v.witness, self.quorum.mode,
                              v.members)]

    def _quorum_reason(self) -> str:
        v = self.quorum.verdict
        if v.syncing:
            return f"waiting for the witness's vote, {v.votes} of {v.expected} votes"
        if v.waiting_for_all:
            return f"waiting for all nodes (wait_for_all), {v.votes} of {v.expected} votes"
        return f"{v.votes} of {v.expected} votes, {v.needed} needed"

    def _finish(self, actions: list, now: int) -> list:
        """Turn score changes into arbiter input and sends into datagrams."""
        out: list = []
        pending = list(actions)
        while pending:
            a = pending.pop(0)
            if isinstance(a, ScoreChanged):
                out.append(a)
                pending += self.arbiter.set_score(a.new, self.connectivity.score_max, now)
            else:
                out.append(a)
        out += self.ownership.update({g: self.arbiter.holders(g) for g in self.arbiter.local_groups},
                                     out, now, self.arbiter.peers, self.node)
        for a in out:
            if isinstance(a, (NodeChanged, PeerRestarted)):
                self.changed[("node", a.node)] = now
            elif isinstance(a, (LinkUp, LinkDown)):
                self.changed[("link", a.node, a.link)] = now
            elif isinstance(a, (Settled, LeaveComplete)):
                self.changed[("node", self.node)] = now
        announce = any(isinstance(a, AnnounceNow) for a in out)
        sends = [a.link for a in out if isinstance(a, Send)]
        out = [a for a in out if not isinstance(a, (AnnounceNow, Send))]
        if self.left:
            return out
        if self.arbiter.leave_complete:
            ann = self._announcement(now)
            for link in self.links:
                for _ in range(LEAVE_COPIES):
                    out.append(Transmit(link, self.codec.encode(Kind.LEAVE, ann)))
            self.left = True
            out.append(LeaveComplete())
            return out
        if announce:
            sends = list(self.links)
            kind = Kind.UPDATE
        else:
            kind = Kind.HEARTBEAT
        if sends:
            ann = self._announcement(now)
            for link in dict.fromkeys(sends):
                out.append(Transmit(link, self.codec.encode(kind, ann)))
        return out

    def _announcement(self, now: int):
        """The arbiter's announcement with our maintenance digest, and our marks while a live
        peer's digest differs from ours (newest first, as many as fit)."""
        ann = self.arbiter.announcement()
        digest = self.maintenance.digest()
        if not digest:
            return ann
        alive = self.membership.alive() - {self.node}
        marks: tuple = ()
        if any(self._peer_digest.get(p) != digest for p in alive):
            room, used, keep = self._mark_room(ann), 0, []
            for m in self.maintenance.ordered():
                used += len(encode_mark(m))
                if used > room:
                    break
                keep.append(m)
            marks = tuple(keep)
        return replace(ann, maint_digest=digest, marks=marks)

    def _mark_room(self, ann=None) -> int:
        """Bytes left for maintenance marks in a message (besides the digest and the count)."""
        from .messages import Announcement, GroupEntry, GroupState, Grant, Status
        if ann is None:  # the worst case, as _check_size
            groups = list(self.arbiter.local_groups)
            peers = [n for n in self.arbiter.nodes if n != self.node]
            longest = max(self.arbiter.nodes, key=lambda n: len(n.encode()))
            ann = Announcement(Status.ACTIVE, 0xFFFF, 0xFFFF,
                               tuple(GroupEntry(g, GroupState.CLAIM, 1, longest, True) for g in groups),
                               tuple(Grant(p, g, 1) for p in peers for g in groups), tuple(groups),
                               tuple(self.arbiter.nodes))
        c = self.codec
        msg = Message(Kind.UPDATE, c.cluster, c.node, c.generation, 1 << 63, c.keepalive_ms, c.deadtime_ms,
                      replace(ann, maint_digest=b"", marks=()))
        return c.max_size - encoded_size(msg, c.auth) - 8 - 2

    def _check_size(self) -> None:
        """Fail at start, not at the first busy moment, if the worst-case message is too big."""
        from .messages import Announcement, GroupEntry, GroupState, Grant, Status
        groups = list(self.arbiter.local_groups)
        peers = [n for n in self.arbiter.nodes if n != self.node]
        longest = max(self.arbiter.nodes, key=lambda n: len(n.encode()))
        worst = Announcement(
            Status.ACTIVE, 0xFFFF, 0xFFFF,
            tuple(GroupEntry(g, GroupState.CLAIM, 1, longest, True) for g in groups),
            tuple(Grant(p, g, 1) for p in peers for g in groups), tuple(groups))
        saved = self.codec.seq
        try:
            self.codec.encode(Kind.UPDATE, worst)
        except ValueError as exc:
            raise ValueError(f"cluster messages would not fit: {exc}; use fewer or shorter group "
                             f"names, or a larger max_size") from None
        finally:
            self.codec.seq = saved
