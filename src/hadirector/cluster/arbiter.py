"""The arbiter: which node runs which resource group. A pure core; every node runs one.

Each node announces, for every group, its own state (messages.GroupState): NONE, CLAIM (wants
it), STARTING, HELD, STOPPING; plus the grants it gives to other nodes' claims, its takeover
requests, its connectivity score and its status. The arbiter reads the latest announcement of
every live peer (membership decides who is live) and re-evaluates everything after each input.

Who should run an unheld group: among the candidates (this node and live peers that are starting
or active, not leaving, and have not failed with the group), keep those with the best connectivity
score (ipfail: the side that lost its ping nodes gives the groups up), then prefer

  1. the node a releasing node handed the group to (its `to`), e.g. the target of a standby;
  2. a node that asked to take it over (`takeover`);
  3. the group's preferred node (haresources' first field), then the lowest node name.

Every node computes the same answer from the same announcements.

Starting a group is a handshake, so that in a healthy cluster no two nodes ever run it:

  * the chosen node announces CLAIM(g, n), n a fresh claim number;
  * a node grants claim n only while its own state for g is NONE (it is not running, starting or
    stopping the group and does not claim it itself; of two claims, the one the rule above
    prefers wins, the other withdraws and grants) and no other live peer runs or stops g (a
    third node's veto, for cuts where the claimant cannot hear the holder);
  * the claimant starts (AcquireGroup) once every live peer's latest announcement grants claim n.

A node that holds a group and should not (standby, takeover asked by a peer, a peer with a better
score, auto_failback, a failure, shutdown) releases it (ReleaseGroup) and grants nothing for it
until the driver says the resources are fully stopped (`group_stopped`, "ReleaseDone"), so its
peer starts only after the stop: release before acquire. A dead peer's announcements are dropped,
so its groups become unheld and are claimed without its grant, i.e. after deadtime.

Split brain (a healed partition: several live nodes announce STARTING/HELD for one group): the
keeper is the holder that did not just stall (a node that knows it was not running, see
`stalled`, announces `yields` on its groups for stall_yield ms and gives way to the node that kept
serving), then the best score, then the group's preferred node, then the lowest name. The others
release; the keeper emits Reannounce(g) (gratuitous ARP) at once and again when each loser has
stopped; other reasons to move the group wait until the split brain is over. Exception: a holder
that does not hear us (its announcements have left us out for deaf_after ms, counted from the
first one that did, and we have heard it that long: a one-way link, typically a firewall) would
never learn that it should let go, so we do, whatever the rule says (event NotHeardBy). One
announcement that leaves us out proves nothing: a peer that wrongly declared us dead sends one
before it hears us again.

Addresses (cluster/guard.py): a group with VIPs is taken without every node's grant only after
its addresses were probed on the wire (RFC 5227) and nobody answered: a peer that is silent on
every heartbeat link may still be alive and serving on the public side. Probing starts when a
peer that runs the group is late (warntime), so a real failover is not delayed; while another MAC
answers, the claim waits (event HeldElsewhere, once). A holder that sees another MAC use its
address defends it once (Reannounce, RFC 5227 2.4) and applies the keeper rule among itself and
the unaccounted peers (AddressConflict). While a group with VIPs starts or runs here and this node
is fit to hold it, Lease(g) renews the kernel's permission to answer for its addresses; after a
stall in which the lease ran out, nothing is renewed until the wire is probed clear again.

Draining: a planned, orderly release (standby, a peer's takeover request, auto_failback to the
preferred node, shutdown) is a ReleaseGroup with drain=True: the driver lets the connections in
flight to the group's VIPs finish (at most the group's drain time, `drain`: the longest `vip.drain`
of its VIPs) before it removes the addresses. Nobody else can answer for them meanwhile (the
peers start the group only after our `group_stopped`), so the lease keeps being renewed for the
drain time from the release, unless a peer announces the group running. Every other release
(split brain, an address conflict, lost quorum, a failure, a better-connected peer: another node
may answer already, or this one is hard to reach) has drain=False and the lease is dropped at once.

auto_failback (ha.cf), read from heartbeat's hb_resource.c and ha.cf(5):
  on      when a group's preferred node comes (back) up, restarts, or regains the best score while
          another node holds the group, the holder hands it back. Like heartbeat, it is an event:
          after `standby` the group stays on the other node until the next such event.
  off     a group stays where it runs; the preferred node only matters when nobody runs it.
  legacy  heartbeat's default, from before nice_failback: every node always takes its own
          (preferred) resources when it comes up, which is what `on` does; we behave like `on`
          and set `legacy_warning` so the driver can say so. (heartbeat in legacy mode refuses
          hb_standby; we accept standby/takeover in every mode.)

Operator requests (hb_standby / hb_takeover; "local" and "foreign" are relative to this node):
  standby  all: hand over every group held here; local: those whose preferred node is this one;
           foreign: the others; failback: like foreign, but each goes to its preferred node.
  takeover all: ask for every group; local|failback: those this node is preferred for;
           foreign: the others. The holder releases to us if our score is not worse; a request
           not served within request_timeout (heartbeat's 10 s STANDBY_INIT_TO_MS) expires.
A move needs a target with a score at least as good as the holder's, else it is refused.

Quorum (quorum.py, set by NodeCore through `set_quorum`): in mode "ok" everything above
applies; in "freeze" (no quorum, no_quorum_policy freeze) no group is claimed or started and
claims in progress are withdrawn, but running groups stay; in "stop" (no quorum, policy stop)
every group starting or running here is released as well (Pacemaker's no-quorum-policy). With
the groups' addresses still answered by the node that lost quorum, the majority's takeover
waits for the wire to be clear (guard.py), so the two never answer at once on a shared LAN.
Where the LAN is cut too, the leases do it: NodeCore sets `renew_until` (quorum.py
renew_until), and a lease is not renewed after it, so the kernel of a node that stopped hearing
a majority falls silent before the majority can declare it dead and take over. Unless a peer's
RFC 5227 probes for the addresses arrive (within two slow probe intervals): then the LAN is
shared, our answers keep the prober out, and the lease runs on until the release is done.

Start-up: `start()` returns StopStale(g) for every group (nothing can be ours before we claimed
it, so anything left from an earlier run is stale) and the node claims nothing until `settle()`
(membership's Settled: every peer heard, or initdead passed).

Local group transitions are the table GROUP_TRANSITIONS; an event that does not fit the state
raises TransitionError naming both (the driver reported something impossible; it should log it).
Time is int milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from .actions import (AcquireGroup, AddressConflict, AnnounceNow, HeldElsewhere, Lease, NotHeardBy,
                      Reannounce, ReleaseGroup, RequestResult, SplitBrain, StartCancelled, StopStale)
from .guard import CLAIM as SEEN_CLAIM, PROBE as SEEN_PROBE, AddressGuard, GuardTiming, Seen
from .membership import TransitionError
from .messages import Announcement, GroupEntry, GroupState, Grant, Status
from .quorum import FREEZE as QUORUM_FREEZE, OK as QUORUM_OK, STOP as QUORUM_STOP

NONE, CLAIM, STARTING, HELD, STOPPING = (GroupState.NONE, GroupState.CLAIM, GroupState.STARTING,
                                         GroupState.HELD, GroupState.STOPPING)
RUNNING = (STARTING, HELD)

GROUP_TRANSITIONS: dict[tuple[GroupState, str], GroupState] = {
    (NONE, "stale"): STOPPING,  # start-up clean-up
    (NONE, "claim"): CLAIM,
    (CLAIM, "withdraw"): NONE,
    (CLAIM, "granted"): STARTING,
    (STARTING, "started"): HELD,
    (STARTING, "failed"): STOPPING,
    (STARTING, "release"): STOPPING,
    (HELD, "release"): STOPPING,
    (HELD, "failed"): STOPPING,
    (STOPPING, "stopped"): NONE,
    (STOPPING, "started"): STOPPING,  # a start finished after the release was asked: stop follows
}

WHICH = ("all", "local", "foreign", "failback")
DEFAULT_REQUEST_TIMEOUT = 10_000  # heartbeat hb_resource.c STANDBY_INIT_TO_MS


def group_drains(groups) -> dict[str, int]:
    """{group: the longest `drain` (ms) of its VIPs} for config.model.Group objects."""
    return {g.name: max((int(getattr(r, "drain", 0)) for r in g.resources
                         if getattr(r, "kind", "") == "vip"), default=0) for g in groups}


@dataclass
class _Local:
    state: GroupState = NONE
    claim: int = 0
    to: str = ""  # handed to this node on release
    failed: bool = False
    reason: str = ""
    failback_ok: bool = False  # the preferred node could take it back (for the edge of auto_failback)
    losers: frozenset[str] = frozenset()  # split brain: nodes we wait for to release
    drain_until: int | None = None  # a draining release: renew the lease until then


class Arbiter:
    """Decides which groups this node runs.

    Args:
        local: this node's name; nodes: every cluster node;
        groups: {group name: preferred node} in haresources order (or config.model.Group objects);
        auto_failback: "on", "off" or "legacy";
        request_timeout: ms a takeover request waits for the holder to release;
        drain: {group: ms} its VIPs may drain on a planned release (the longest `vip.drain`;
            derived from config.model.Group objects when not given).

    Inputs (each returns a list of actions/events, see actions.py): start, settle, set_alive,
    peer_restarted, on_announcement, set_score, group_started, group_failed, group_stopped,
    standby, takeover, shutdown, on_timer. `announcement()` is what to send to peers;
    `next_deadline()` when to call on_timer (None: never).
    """

    def __init__(self, local: str, nodes: Iterable[str], groups, auto_failback: str = "legacy", *,
                 request_timeout: int = DEFAULT_REQUEST_TIMEOUT, deaf_after: int = 30_000,
                 addresses: Mapping[str, Iterable[str]] | None = None,
                 guard_timing: GuardTiming | None = None, stall_yield: int | None = None,
                 fencer=None, drain: Mapping[str, int] | None = None):
        self.local = local
        self.nodes = tuple(nodes)
        if local not in self.nodes:
            raise ValueError(f"{local!r} is not a cluster node; nodes are {', '.join(self.nodes)}")
        if isinstance(groups, Mapping):
            self.preferred = dict(groups)
        else:
            groups = tuple(groups)
            self.preferred = {g.name: g.preferred_node for g in groups}
            if drain is None:
                drain = group_drains(groups)
        self.drain = {g: int(ms) for g, ms in (drain or {}).items() if g in self.preferred and ms > 0}
        for g, p in self.preferred.items():
            if p not in self.nodes:
                raise ValueError(f"group {g}: preferred node {p!r} is not a cluster node")
        if auto_failback not in ("on", "off", "legacy"):
            raise ValueError(f"auto_failback must be on, off or legacy, got {auto_failback!r}")
        self.auto_failback = auto_failback
        self.legacy_warning = auto_failback == "legacy"
        self.request_timeout = request_timeout
        self.deaf_after = deaf_after
        self.stall_yield = stall_yield if stall_yield is not None else 2 * deaf_after
        self._alive_since: dict[str, int] = {}
        self._omitted_since: dict[str, int] = {}  # peer -> first announcement (in a row) leaving us out
        self._deaf: set[str] = set()  # peers reported as not hearing us
        self._stalled_at: int | None = None
        self._yielding = False  # stalled within stall_yield: announce `yields` on running groups
        self.unaccounted: set[str] = set()  # peers that may run what we do not know (membership)
        self._late: set[str] = set()  # live peers silent for warntime
        timing = guard_timing or GuardTiming.derive(1000, 30_000)
        self.guards: dict[str, AddressGuard] = {
            g: AddressGuard(tuple(a), timing) for g, a in (addresses or {}).items() if tuple(a)}
        self._unverified: set[str] = set()  # held groups whose lease ran out while we stalled
        # fencing.py Fencer (None: no fencing configured): a claim made while a peer is
        # unaccounted for waits until that peer was fenced
        self.fencer = fencer
        self.status = Status.STARTING
        self.score = 0
        self.score_max = 0
        self.local_groups = {g: _Local() for g in self.preferred}
        self.peers: dict[str, Announcement] = {}  # latest announcement of each live peer
        self.alive: set[str] = set()
        self.requests: dict[str, int] = {}  # group -> deadline of our takeover request
        self._claims = 0
        self._started = False
        self.quorum = QUORUM_OK  # quorum.py mode: ok, freeze or stop
        self.quorum_reason = ""
        # leases are renewed only before this time (quorum.py renew_until; None: no limit)
        self.renew_until: int | None = None
        self._probed_at: dict[str, int] = {}  # group -> last RFC 5227 probe by another MAC
        self._last_announcement: Announcement | None = None

    # ------------------------------------------------------------------ queries

    def announcement(self) -> Announcement:
        groups = tuple(
            GroupEntry(g, st.state, st.claim if st.state == CLAIM else 0, st.to, st.failed,
                       self._yielding and st.state in RUNNING)
            for g, st in self.local_groups.items()
            if st.state != NONE or st.to or st.failed)
        grants = []
        for peer in sorted(self.peers):
            for e in self.peers[peer].groups:
                if e.state == CLAIM and e.name in self.local_groups \
                        and self.local_groups[e.name].state == NONE \
                        and not self._busy_elsewhere(e.name, peer):
                    grants.append(Grant(peer, e.name, e.claim))
        return Announcement(self.status, self.score, self.score_max, groups, tuple(grants),
                            tuple(sorted(self.requests)), tuple(sorted(self.alive)))

    def _busy_elsewhere(self, group: str, claimant: str) -> bool:
        """Does a live peer other than the claimant run or stop the group? Then we do not grant:
        with three or more nodes the claimant may not hear that peer (an asymmetric cut), and
        our veto keeps the group from running twice."""
        return any(self.peers[p].group(group).state in (STARTING, HELD, STOPPING)
                   for p in self.peers if p != claimant)

    def holders(self, group: str) -> list[str]:
        """Nodes (this one included) that announce the group as starting or held."""
        out = [self.local] if self.local_groups[group].state in RUNNING else []
        return out + [p for p in sorted(self.peers) if self.peers[p].group(group).state in RUNNING]

    def desired_owner(self, group: str) -> str | None:
        """Who should run `group` if nobody ran it (None: no candidate)."""
        return self._pick(group, [n for n in self._everyone() if self._eligible(n, group)])

    @property
    def leave_complete(self) -> bool:
        """After shutdown(): every group is stopped here."""
        return self.status == Status.LEAVING and all(
            st.state == NONE for st in self.local_groups.values())

    def snapshot(self) -> dict:
        return {"status": self.status.name.lower(), "score": self.score,
                "groups": {g: {"state": st.state.name.lower(), "preferred": self.preferred[g],
                               "holders": self.holders(g), "failed_here": st.failed,
                               "handed_to": st.to or None, **self._guard_snapshot(g)}
                           for g, st in self.local_groups.items()}}

    def _guard_snapshot(self, g: str) -> dict:
        gd = self.guards.get(g)
        if gd is None:
            return {}
        out: dict = {"addresses": list(gd.addresses), "probing": gd.probing,
                     "lease_until": gd.lease_until, "verified": g not in self._unverified}
        if gd.blocked() and gd.answer is not None:
            out["answered_by"] = {"mac": gd.answer.mac, "on": gd.answer.where, "at": gd.answer.at}
        return out

    def answering_elsewhere(self) -> dict[str, str]:
        """Silent peers that may be the one still answering for a group's address: node -> the
        interface the answer came on ("heartbeat lost, alive on eth0")."""
        out: dict[str, str] = {}
        for g, gd in self.guards.items():
            if gd.blocked() and gd.answer is not None:
                for n in self.unaccounted:
                    out.setdefault(n, gd.answer.where)
        return out

    # ------------------------------------------------------------------ inputs

    def start(self, now: int) -> list:
        """Call once, first. Returns StopStale for every group."""
        if self._started:
            raise RuntimeError("Arbiter.start() called twice")
        self._started = True
        out: list = []
        for g, st in self.local_groups.items():
            self._move(g, st, "stale", "start-up clean-up")
            out.append(StopStale(g))
        return out + self._evaluate(now)

    def settle(self, now: int) -> list:
        """Start-up is over (membership Settled): take part in ownership decisions."""
        if self.status == Status.STARTING:
            self.status = Status.ACTIVE
        return self._evaluate(now)

    def set_alive(self, alive: Iterable[str], now: int,
                  news: Mapping[str, Announcement] | None = None,
                  restarted: Iterable[str] = (), unaccounted: Iterable[str] | None = None) -> list:
        """The peers membership considers up or active (others' announcements are forgotten),
        with the newest announcements that came in the same packets (`news`), the peers that
        came back with a new generation (`restarted`, see peer_restarted) and the peers that may
        run something we do not know of (`unaccounted`: never heard, or silent, not left)."""
        self.alive = set(alive) - {self.local}
        if unaccounted is not None:
            self.unaccounted = set(unaccounted) - {self.local}
        for p in list(self.peers):
            if p not in self.alive:
                del self.peers[p]
        for d in (self._alive_since, self._omitted_since):
            for p in list(d):
                if p not in self.alive:
                    del d[p]
        self._late &= self.alive
        for p in self.alive:
            self._alive_since.setdefault(p, now)
        for node in restarted:
            self._forget(node)
            self._alive_since[node] = now
            self._omitted_since.pop(node, None)
        for node, ann in (news or {}).items():
            if node in self.alive:
                self._news(node, ann, now)
        return self._evaluate(now)

    def _news(self, node: str, ann: Announcement, now: int) -> None:
        self.peers[node] = ann
        self._late.discard(node)
        if self.local in ann.heard:
            self._omitted_since.pop(node, None)
        else:
            self._omitted_since.setdefault(node, now)

    def peer_late(self, node: str, now: int) -> list:
        """membership's LateHeartbeat: a live peer has been silent for warntime. If it runs a
        group with addresses, start probing them now, so that the wire is known to be clear (or
        not) by the time deadtime strikes."""
        if node in self.alive:
            self._late.add(node)
        return self._evaluate(now)

    def address_seen(self, address: str, kind: str, mac: str, own_mac: str, where: str,
                     now: int) -> list:
        """The driver saw another MAC (`mac`; ours is `own_mac`) on `where` use `address` (kind
        "claim": an ARP reply, announcement or request with it as sender; IPv6 likewise) or probe
        for it ("probe": an RFC 5227 probe, a DAD solicitation)."""
        if kind not in (SEEN_CLAIM, SEEN_PROBE):
            raise ValueError(f"address_seen: kind must be {SEEN_CLAIM} or {SEEN_PROBE}, got {kind!r}")
        if mac == own_mac:
            return []
        out: list = []
        seen = Seen(now, address, mac, where)
        for g, gd in self.guards.items():
            if address not in gd.addresses:
                continue
            st = self.local_groups[g]
            if st.state in RUNNING:
                if kind == SEEN_CLAIM:
                    out += self._conflict(g, st, seen, now)
                else:
                    self._probed_at[g] = now  # a peer checks the wire: it will see our answers
            elif gd.probing:
                if kind == SEEN_CLAIM:
                    gd.seen_use(seen)
                elif self._rival_wins(g, mac, own_mac):
                    gd.seen_rival()
        return out + self._evaluate(now)

    def _rival_wins(self, g: str, mac: str, own_mac: str) -> bool:
        """Two nodes probe for one address at once (neither hears the other): the group's
        preferred node goes on; if we are not it and it is silent, the rival may be it; else
        the lower MAC goes on (RFC 5227 2.1.1 makes both back off; we need one to win)."""
        p = self.preferred[g]
        if p == self.local:
            return False
        if p in self.unaccounted:
            return True
        return mac < own_mac

    def _conflict(self, g: str, st: _Local, seen: Seen, now: int) -> list:
        """Another MAC claims an address of a group running here."""
        if any(self.peers[p].group(g).state in RUNNING for p in self.peers):
            return []  # a split brain among live peers: the keeper rule there decides
        gd = self.guards[g]
        out: list = []
        if gd.may_defend(now):
            out.append(Reannounce(g))  # RFC 5227 2.4 (b): defend once
        cands = [self.local] + sorted(self.unaccounted)
        keeper = min(cands, key=lambda n: (n == self.local and self._yielding,
                                           n != self.preferred[g], n))
        out.append(AddressConflict(g, seen.address, seen.mac, seen.where, keeper))
        if keeper != self.local and st.state in RUNNING:
            self._unverified.discard(g)
            out += self._release(g, st, f"address conflict: {seen.mac} answers for {seen.address} "
                                        f"on {seen.where}; {keeper} keeps it", keeper)
        return out

    def peer_restarted(self, node: str, now: int) -> list:
        """A peer came back with a new generation: what it announced before is void."""
        self._forget(node)
        return self._evaluate(now)

    def stalled(self, now: int) -> list:
        """This node was not running for a while (membership's Stalled): peers may have lost us
        meanwhile, so their not hearing us is not a one-way link until deaf_after passes again;
        a peer that took over a group meanwhile keeps it (we announce `yields` for stall_yield
        ms); and a group whose lease ran out during the stall is renewed only after its
        addresses were probed clear (someone else may have taken them)."""
        for p in self._alive_since:
            self._alive_since[p] = now
        for p in self._omitted_since:
            self._omitted_since[p] = now
        self._stalled_at = now
        for g, gd in self.guards.items():
            if self.local_groups[g].state in RUNNING and not gd.lease_valid(now, gd.timing.probe):
                self._unverified.add(g)
                gd.drop_lease()
        return self._evaluate(now)

    def _forget(self, node: str) -> None:
        self.peers.pop(node, None)
        for g, st in self.local_groups.items():
            if self.preferred[g] == node:
                st.failback_ok = False  # its return is an auto_failback event

    def on_announcement(self, node: str, ann: Announcement, now: int) -> list:
        """The newest announcement of a live peer (call set_alive first)."""
        if node == self.local or node not in self.nodes:
            raise ValueError(f"announcement from {node!r}, which is not a peer")
        if node in self.alive:
            self._news(node, ann, now)
        return self._evaluate(now)

    def set_quorum(self, mode: str, now: int, reason: str = "", evaluate: bool = True) -> list:
        """quorum.py's mode: ok, freeze or stop (see the module docstring). `evaluate=False`
        when another input that evaluates follows at once (NodeCore sets it before set_alive)."""
        if mode not in (QUORUM_OK, QUORUM_FREEZE, QUORUM_STOP):
            raise ValueError(f"quorum mode must be ok, freeze or stop, got {mode!r}")
        self.quorum, self.quorum_reason = mode, reason
        return self._evaluate(now) if evaluate else []

    def set_score(self, score: int, score_max: int, now: int) -> list:
        self.score, self.score_max = score, score_max
        return self._evaluate(now)

    def group_started(self, group: str, now: int) -> list:
        """The driver started every resource of the group."""
        st = self._group(group)
        self._move(group, st, "started", "started")
        return self._evaluate(now)

    def group_failed(self, group: str, now: int, detail: str = "") -> list:
        """A start failed, or monitoring failed after the configured retries. The group is stopped
        here and handed to another node; this node is no candidate for it until a takeover.
        While the group is being released already, the failure is the release's doing (a stop
        cancels a start in progress): StartCancelled, and no failure mark."""
        st = self._group(group)
        if st.state == STOPPING:
            return [StartCancelled(group, detail)]
        out: list = []
        st.failed = True
        if st.state in RUNNING:
            out += self._release(group, st, f"failed: {detail}" if detail else "failed",
                                 self._target(group, exclude_self=True), event="failed")
        else:
            self._move(group, st, "failed", detail)
        return out + self._evaluate(now)

    def group_stopped(self, group: str, now: int) -> list:
        """ReleaseDone: nothing of the group runs here any more."""
        st = self._group(group)
        self._move(group, st, "stopped", "stopped")
        if st.drain_until is not None:
            st.drain_until = None
            if group in self.guards:
                self.guards[group].drop_lease()
        return self._evaluate(now)

    def standby(self, which: str, now: int) -> list:
        """hb_standby: hand the selected groups held here to other nodes."""
        sel = self._select(which, takeover=False)
        name = f"standby {which}"
        out: list = []
        for g in sel:
            st = self.local_groups[g]
            if st.state != HELD:
                continue
            if which == "failback":
                p = self.preferred[g]
                ok = self._failback_ok(g)
                target = p if ok else self._target(g, exclude_self=True)
            else:
                target = self._target(g, exclude_self=True)
            if target is None:
                out.append(RequestResult(name, g, False, "no other node can take it (none alive, "
                                                         "or none with as good connectivity)"))
                continue
            out += self._release(g, st, name, target, now=now, drain=True)
            out.append(RequestResult(name, g, True, f"handing over to {target}"))
        if not any(isinstance(a, RequestResult) for a in out):
            out.append(RequestResult(name, "", False, "no selected group is held here"))
        return out + self._evaluate(now)

    def takeover(self, which: str, now: int) -> list:
        """hb_takeover: ask for the selected groups. Clears this node's failure marks for them."""
        sel = self._select(which, takeover=True)
        name = f"takeover {which}"
        out: list = []
        if self.status != Status.ACTIVE:
            return [RequestResult(name, "", False, f"this node is {self.status.name.lower()}")]
        if self.quorum != QUORUM_OK:
            why = f": {self.quorum_reason}" if self.quorum_reason else ""
            return [RequestResult(name, "", False, f"this node has no quorum{why}")]
        for g in sel:
            st = self.local_groups[g]
            st.failed = False
            if st.state in RUNNING or st.state == CLAIM:
                continue
            self.requests[g] = now + self.request_timeout
            out.append(RequestResult(name, g, True, "requested"))
        if not out:
            out.append(RequestResult(name, "", True, "every selected group already runs here"))
        return out + self._evaluate(now)

    def shutdown(self, now: int) -> list:
        """Release everything and take nothing more; `leave_complete` turns True when done."""
        self.status = Status.LEAVING
        self.requests.clear()
        out: list = []
        for g, st in self.local_groups.items():
            if st.state in RUNNING:
                out += self._release(g, st, "shutdown", self._target(g, exclude_self=True),
                                     now=now, drain=True)
        return out + self._evaluate(now)

    def on_timer(self, now: int) -> list:
        return self._evaluate(now)

    def next_deadline(self) -> int | None:
        times = list(self.requests.values())
        if self._yielding and self._stalled_at is not None:
            times.append(self._stalled_at + self.stall_yield)
        for gd in self.guards.values():
            t = gd.next_deadline()
            if t is not None:
                times.append(t)
        if self.fencer is not None and self.fencer.next_deadline() is not None:
            times.append(self.fencer.next_deadline())
        return min(times) if times else None

    # ------------------------------------------------------------------ the rules

    def _everyone(self) -> list[str]:
        return [self.local] + sorted(self.peers)

    def _score(self, node: str) -> int:
        return self.score if node == self.local else self.peers[node].score

    def _eligible(self, node: str, group: str, settled: bool = False) -> bool:
        """May `node` run `group`? For an unheld group starting nodes count (they claim once
        settled, and nobody should grab their groups meanwhile); a running group is only handed
        to a node that is settled (`settled=True`)."""
        if node == self.local:
            status, failed = self.status, self.local_groups[group].failed
        else:
            ann = self.peers.get(node)
            if ann is None:
                return False
            status, failed = ann.status, ann.group(group).failed
        ok = (Status.ACTIVE,) if settled else (Status.ACTIVE, Status.STARTING)
        return status in ok and not failed

    def _entry(self, node: str, group: str) -> GroupEntry:
        if node == self.local:
            st = self.local_groups[group]
            return GroupEntry(group, st.state, st.claim, st.to, st.failed)
        return self.peers[node].group(group)

    def _yields(self, node: str, group: str) -> bool:
        """Does `node` give way in a split brain over `group` (it stalled just now)?"""
        if node == self.local:
            return self._yielding
        return self.peers[node].group(group).yields

    def _rank(self, group: str, node: str) -> tuple:
        """Sort key, best first: better score, the preferred node, then the lowest name."""
        return (-self._score(node), node != self.preferred[group], node)

    def _pick(self, group: str, candidates: list[str]) -> str | None:
        if not candidates:
            return None
        top = max(self._score(n) for n in candidates)
        best = [n for n in candidates if self._score(n) == top]
        # a node that passed the group on cancels the handoffs made to it (its own `to` is newer)
        targets = {self._entry(n, group).to for n in self._everyone()} - {""}
        targets = {t for t in targets if t in best and not self._entry(t, group).to}
        if targets:
            return min(targets, key=lambda n: self._rank(group, n))
        requesters = [n for n in best if group in self._requests_of(n)]
        if requesters:
            return min(requesters, key=lambda n: self._rank(group, n))
        return min(best, key=lambda n: self._rank(group, n))

    def _requests_of(self, node: str):
        return self.requests if node == self.local else self.peers[node].requests

    def _target(self, group: str, exclude_self: bool) -> str | None:
        """Where to hand `group` on release: the best candidate at least as well connected."""
        cands = [n for n in self._everyone() if self._eligible(n, group, settled=True)
                 and not (exclude_self and n == self.local) and self._score(n) >= self.score]
        return self._pick(group, cands)

    def _select(self, which: str, takeover: bool) -> list[str]:
        """hb_standby/hb_takeover selections. "failback" means the groups that move to their
        preferred node: for standby those preferred elsewhere, for takeover those preferred here."""
        if which not in WHICH:
            raise ValueError(f"expected one of {', '.join(WHICH)}, got {which!r}")
        if which == "all":
            return list(self.local_groups)
        here = which == "local" or (which == "failback" and takeover)
        return [g for g, p in self.preferred.items() if (p == self.local) == here]

    def _group(self, group: str) -> _Local:
        try:
            return self.local_groups[group]
        except KeyError:
            raise ValueError(f"unknown group {group!r}; groups are {', '.join(self.local_groups)}") \
                from None

    def _move(self, group: str, st: _Local, event: str, reason: str) -> None:
        try:
            st.state = GROUP_TRANSITIONS[(st.state, event)]
        except KeyError:
            raise TransitionError(f"group {group}", st.state.name.lower(), event) from None
        st.reason = reason

    def _release(self, group: str, st: _Local, reason: str, to: str | None,
                 event: str = "release", *, now: int = 0, drain: bool = False) -> list:
        """Stop the group here. `drain`: a planned hand-over (see the module docstring); the lease
        is then renewed for the group's drain time from `now`, else dropped at once."""
        self._move(group, st, event, reason)
        st.to = to or ""
        verified = group not in self._unverified
        self._unverified.discard(group)
        drain = drain and verified
        ms = self.drain.get(group, 0)
        st.drain_until = now + ms if drain and ms > 0 and group in self.guards else None
        if group in self.guards and st.drain_until is None:
            self.guards[group].drop_lease()
        return [ReleaseGroup(group, reason, drain=drain)]

    def _deaf_to_us(self, node: str, now: int) -> bool:
        """We have heard `node` for deaf_after ms, yet its announcements have left us out for
        deaf_after ms, counted from the first that did: the link works one way only (typically a
        firewall dropping our heartbeats). One stale announcement is no proof: a peer that wrongly
        declared us dead sends one before it hears us again."""
        ann = self.peers.get(node)
        return ann is not None and self.local not in ann.heard \
            and now - self._alive_since.get(node, now) >= self.deaf_after \
            and now - self._omitted_since.get(node, now) >= self.deaf_after

    def _evaluate(self, now: int) -> list:
        out: list = []
        self._yielding = self._stalled_at is not None and now < self._stalled_at + self.stall_yield
        deaf = {p for p in self.peers if self._deaf_to_us(p, now)}
        out += [NotHeardBy(p, now - self._omitted_since[p]) for p in sorted(deaf - self._deaf)]
        self._deaf = deaf
        if self.fencer is not None:
            self.fencer.heard(self.alive, self._held_counts())
        for g, st in self.local_groups.items():
            out += self._evaluate_group(g, st, now)
            if g in self.guards:
                out += self._guard_group(g, st, self.guards[g], now)
        if self.fencer is not None:
            claiming = any(st.state == CLAIM for st in self.local_groups.values())
            out += self.fencer.want(self.unaccounted if claiming else (), now)
        out += self._expire_requests(now)
        ann = self.announcement()
        if ann != self._last_announcement:
            self._last_announcement = ann
            out.append(AnnounceNow())
        return out

    def _evaluate_group(self, g: str, st: _Local, now: int) -> list:
        out: list = []
        peers_running = [p for p in self.peers if self.peers[p].group(g).state in RUNNING]
        # a handoff is over once the target took the group up, or cannot
        if st.to and (st.to not in self.peers or self.peers[st.to].group(g).state in RUNNING
                      or not self._eligible(st.to, g)):
            st.to = ""
        # split brain bookkeeping: tell again when a loser has stopped. A peer stopping the group
        # while we run it had it running too (a split brain it noticed first, or a stale copy
        # from before its restart): either way, announce our addresses once it is done.
        if st.state in RUNNING:
            st.losers |= {p for p in self.peers if self.peers[p].group(g).state == STOPPING}
        if st.losers:
            gone = {n for n in st.losers
                    if n not in self.peers or self.peers[n].group(g).state == NONE}
            if gone:
                st.losers -= gone
                if st.state in RUNNING:
                    out.append(Reannounce(g))
        if g in self.requests and st.state == HELD:
            del self.requests[g]
        for _ in range(3):  # NONE -> CLAIM -> STARTING can happen in one go (no peer to ask)
            before = st.state
            out += self._step_group(g, st, peers_running, now)
            if st.state == before:
                break
        return out

    def _wire_clear(self, g: str, now: int) -> bool:
        """May a claim of g start without every node's grant? Groups without addresses, and
        clusters where every node is alive or left cleanly, need nothing more than the grants;
        otherwise the group's addresses must have been probed clear (guard.py)."""
        gd = self.guards.get(g)
        return gd is None or not self.unaccounted or gd.clear(now)

    def _fenced(self) -> bool:
        """With fencing configured, a claim goes on only once every unaccounted peer was fenced
        (fencing.py; Pacemaker: fence before recovering a lost node's resources)."""
        return self.fencer is None or not self.unaccounted or self.fencer.clear(self.unaccounted)

    def _held_counts(self) -> dict[str, int]:
        out = {self.local: sum(st.state in RUNNING for st in self.local_groups.values())}
        for p, ann in self.peers.items():
            out[p] = sum(e.state in RUNNING for e in ann.groups)
        return out

    def fence_result(self, node: str, ok: bool, now: int, detail: str = "", device: str = "",
                     took_ms: int = 0) -> list:
        """The driver ran Fence(node)."""
        if self.fencer is None:
            raise ValueError("fence result, but no fencing is configured")
        return self.fencer.result(node, ok, now, detail, device, took_ms) + self._evaluate(now)

    def _guard_group(self, g: str, st: _Local, gd: AddressGuard, now: int) -> list:
        """Probe, report and renew for one group with addresses (after its state was stepped)."""
        out: list = []
        if g in self._unverified and st.state in RUNNING and gd.clear(now) \
                and not any(self.peers[p].group(g).state in RUNNING for p in self.peers):
            self._unverified.discard(g)  # probed clear after the stall: ours again
        late_holder = any(self.peers[p].group(g).state in (STARTING, HELD, STOPPING)
                          for p in self._late if p in self.peers)
        want = (st.state == CLAIM and bool(self.unaccounted)) \
            or (st.state in RUNNING and g in self._unverified) \
            or (st.state == NONE and late_holder)
        if not want:
            if gd.probing:
                gd.stop()
        else:
            gd.want(now)
            if st.state == CLAIM and gd.blocked() and not gd.reported and gd.answer is not None:
                gd.reported = True
                a = gd.answer
                out.append(HeldElsewhere(g, a.address, a.mac, a.where, tuple(sorted(self.unaccounted))))
            out += gd.tick(now)
        if st.drain_until is not None and (st.state != STOPPING or now >= st.drain_until or any(
                self.peers[p].group(g).state in RUNNING for p in self.peers)):
            st.drain_until = None  # the drain time is over (or a peer runs the group): let it run out
            gd.drop_lease()
        draining = st.drain_until is not None
        if (st.state in RUNNING or draining) and g not in self._unverified \
                and (gd.next_renew is None or now >= gd.next_renew):
            # a peer probing for the addresses shares our LAN: while it does, our answers keep
            # it out, so the lease may run on until the release has stopped the group
            probed = now - self._probed_at.get(g, -(1 << 62)) <= 2 * gd.timing.slow_probe
            if self.renew_until is None or now < self.renew_until or probed:
                out.append(Lease(g, gd.addresses, gd.renew(now)))
            elif draining:
                st.drain_until = None  # no majority heard lately: no renewal for a drain either
                gd.drop_lease()
            elif not gd.lease_valid(now):
                # no majority heard lately and the lease ran out: as after a stall, the wire
                # must be probed clear before we answer again (the majority may have taken it)
                self._unverified.add(g)
                gd.drop_lease()
            else:
                gd.next_renew = now + gd.timing.probe  # try again soon
        return out

    def _step_group(self, g: str, st: _Local, peers_running: list[str], now: int) -> list:
        out: list = []
        if st.state == NONE:
            if self.status == Status.ACTIVE and not st.failed and not peers_running \
                    and self.quorum == QUORUM_OK \
                    and self.desired_owner(g) == self.local and self._claim_wins(g):
                self._claims = self._claims % 0xFFFFFFFF + 1
                st.claim = self._claims
                st.to = ""
                self._move(g, st, "claim", "chosen")
                st.failback_ok = self._failback_ok(g)
        elif st.state == CLAIM:
            if self.status != Status.ACTIVE or st.failed or peers_running or self.quorum != QUORUM_OK \
                    or self.desired_owner(g) != self.local or not self._claim_wins(g):
                self._move(g, st, "withdraw", "not chosen any more")
            elif all(Grant(self.local, g, st.claim) in self.peers[p].grants for p in self.alive
                     if p in self.peers) and self.alive <= set(self.peers) and self._wire_clear(g, now) \
                    and self._fenced():
                self._move(g, st, "granted", "every live peer granted")
                if g in self.guards:
                    self.guards[g].stop()
                    out.append(Lease(g, self.guards[g].addresses, self.guards[g].renew(now)))
                out.append(AcquireGroup(g))
        elif st.state in RUNNING:
            out += self._evaluate_running(g, st, peers_running, now)
        return out

    def _claim_wins(self, g: str) -> bool:
        """Of this node and the peers claiming g, is this node the one the rule picks?"""
        claimants = [p for p in self.peers if self.peers[p].group(g).state == CLAIM
                     and self._eligible(p, g)]
        if not claimants:
            return True
        return self._pick(g, [self.local] + claimants) == self.local

    def _failback_ok(self, g: str) -> bool:
        p = self.preferred[g]
        return p != self.local and self._eligible(p, g, settled=True) and self._score(p) >= self.score

    def _evaluate_running(self, g: str, st: _Local, peers_running: list[str], now: int) -> list:
        out: list = []
        if self.quorum == QUORUM_STOP:  # Pacemaker no-quorum-policy=stop
            why = f"no quorum: {self.quorum_reason}" if self.quorum_reason else "no quorum"
            return self._release(g, st, why, None)
        deaf = sorted(p for p in peers_running if p in self._deaf)
        if deaf:
            # it cannot hear that we run the group too, so it will never let go: we must
            return [SplitBrain(g, tuple(sorted([self.local] + peers_running)), deaf[0])] + \
                self._release(g, st, f"split brain: {deaf[0]} runs it and cannot hear us", deaf[0])
        if peers_running:
            holders = [self.local] + peers_running
            keeper = min(holders, key=lambda n: (self._yields(n, g), self._rank(g, n)))
            if keeper != self.local:
                why = (f"split brain: this node stalled; {keeper} kept it running" if self._yielding
                       else f"split brain: {keeper} keeps it")
                return [SplitBrain(g, tuple(sorted(holders)), keeper)] + \
                    self._release(g, st, why, keeper)
            new = frozenset(peers_running) - st.losers
            if new:
                st.losers |= new
                out.append(SplitBrain(g, tuple(sorted(holders)), keeper))
                out.append(Reannounce(g))
            return out  # other moves wait until the losers have let go
        if st.state != HELD:
            return out  # a start in progress is not interrupted by the rules below
        if self.status == Status.LEAVING:
            return out + self._release(g, st, "shutdown", self._target(g, exclude_self=True),
                                       now=now, drain=True)
        others = [n for n in self.peers if self._eligible(n, g, settled=True)]
        requesters = [n for n in others if g in self.peers[n].requests and self._score(n) >= self.score]
        if requesters:
            to = self._pick(g, requesters)
            return out + self._release(g, st, f"takeover requested by {to}", to, now=now, drain=True)
        better = [n for n in others if self._score(n) > self.score]
        if better:
            to = self._pick(g, better)
            return out + self._release(g, st, f"{to} has better connectivity "
                                              f"({self._score(to)} > {self.score})", to)
        ok = self._failback_ok(g)
        edge = ok and not st.failback_ok
        st.failback_ok = ok
        if edge and self.auto_failback in ("on", "legacy"):
            p = self.preferred[g]
            return out + self._release(g, st, f"auto_failback to preferred node {p}", p, now=now,
                                       drain=True)
        return out

    def _expire_requests(self, now: int) -> list:
        out: list = []
        for g, deadline in list(self.requests.items()):
            st = self.local_groups[g]
            handed = any(self._entry(n, g).to == self.local for n in self.peers)
            if st.state in (CLAIM, STARTING) or handed:
                # being served: the clock restarts, so a handoff that stalls still expires
                self.requests[g] = max(deadline, now + self.request_timeout)
                continue
            if now >= deadline:
                del self.requests[g]
                out.append(RequestResult("takeover", g, False,
                                         f"not handed over within {self.request_timeout} ms"))
        return out
