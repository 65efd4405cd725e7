"""Quorum: may this node's partition hold resource groups? A pure core fed `now` (int ms).

Theory of operation. Every node counts votes for the partition it sees, as corosync's votequorum
does (votequorum(5); exec/votequorum.c calculate_quorum and are_we_quorate):

* each configured node has `votes` (default 1, `[cluster.quorum] votes`); the quorum device
  (corosync-qnetd, `[cluster.quorum.device]`) has one more vote;
* `expected` is `expected_votes` if configured, else the sum of every node's votes plus the
  device's; like votequorum it never falls below the votes actually present;
* the partition's `votes` are those of the members membership reports alive (this node
  included) plus the device's vote when the witness gives it to us (`on_witness(True)`);
* the partition is *quorate* when votes >= expected // 2 + 1 (calculate_quorum:
  `(highest_expected + 2) / 2`), i.e. it holds a strict majority.

Two nodes (votequorum's `two_node: 1`): with exactly two nodes, no device and neither `votes` nor
`expected_votes` configured, the quorum is one vote, so each node alone stays quorate and
heartbeat's own defences decide who answers (the VIP lease and address probing, cluster/guard.py
and resources/lease.py; ping nodes, cluster/connectivity.py). votequorum turns wait_for_all on
with two_node; we keep heartbeat's behaviour and leave it off unless configured. With a device
the two-node special case is off (votequorum refuses two_node with a qdevice): expected is 3,
so a node keeps quorum with its peer or with the witness's vote, and losing only the witness
moves nothing (2 of 3 votes).

wait_for_all (votequorum are_we_quorate): until every node has been seen alive at the same time,
the partition is not quorate, whatever its votes. The wait starts at start-up and, as in
votequorum, starts again whenever quorum is lost, so a single survivor of a two-node cluster that
restarts waits to see its peer before it takes anything.

What the arbiter does with the answer (`mode`), Pacemaker's no-quorum-policy:

    stop    (default) a partition without quorum stops every group it runs and starts none
    freeze  it keeps what it runs but starts nothing new
    ignore  quorum is computed and shown but changes nothing (heartbeat's behaviour)

Leases (policy stop, majority rule: not two_node): a node that stops hearing a majority learns
it only at deadtime, when the majority declares it dead too and may take over; on a cut LAN their
probes do not meet, so both could answer for a while. `renew_until(last_heard, window)` closes
that gap: the VIP leases (guard.py) are renewed only until `window` ms after the moment the
freshest majority (this node, the most recently heard members, the witness's current vote) was
last complete. NodeCore uses window = deadtime - lease - keepalive, so the last renewal's lease
runs out a keepalive before the majority's deadtime, counted from its last heartbeat from us.

The witness's vote is for one membership. After the members change, a vote given for the old
membership says nothing about the new one: votequorum waits in its sync phase until the qdevice
polls with the new ring id, at most qdevice_sync_timeout (exec/votequorum.c votequorum_sync_init,
votequorum_sync_process; a poll with an old ring id is ignored,
message_handler_req_lib_votequorum_qdevice_poll). We do the same when the vote can change the
answer: while *syncing* nothing is started or stopped (mode "freeze"; "ok" with policy ignore)
until the qdevice client reports for the new members (`on_witness`; with `members=` a report for
other members is ignored) or `sync_timeout` passes, after which the vote counts as lost. When the
new members are quorate without the vote, or cannot be with it, there is nothing to wait for.
The client learns of each change from QuorumChanged (its `members`) and tells qnetd.

Witness states for `status`: "none" (no device configured), "unknown" (configured; the client
has not reported, or lost the witness: `on_witness(None)`), "vote" (qnetd gives us its vote),
"no vote" (qnetd gives it to the other side), "waiting" (syncing, see above).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

OK, FREEZE, STOP = "ok", "freeze", "stop"  # what the arbiter may do (mode)
DEVICE_VOTES = 1  # the qnetd device's votes (config.model.Quorum.DEVICE_VOTES)


@dataclass(frozen=True)
class Verdict:
    quorate: bool
    votes: int
    expected: int
    needed: int
    witness: str
    waiting_for_all: bool
    members: tuple[str, ...]
    syncing: bool = False


class Quorum:
    """Args: config: a config.model.Quorum; nodes: every cluster node; local: this node;
    now: start time, ms.

    Inputs: set_members(alive, now), on_witness(vote, now), on_timer(now); each returns True when
    the verdict changed (read `verdict`, `mode`). `next_deadline()`: the end of a witness sync
    (None: no timer). `snapshot(now)` is plain data for `hadirector status`.
    """

    def __init__(self, config, nodes: Iterable[str], local: str, now: int):
        self.config = config
        self.nodes = tuple(nodes)
        self.local = local
        self.policy = config.no_quorum_policy
        self.node_votes = config.node_votes(self.nodes)
        self.device = config.device is not None
        self.sync_timeout = config.device.sync_timeout if self.device else 0
        self.two_node = config.two_node(self.nodes)
        self.configured_expected = config.expected(self.nodes)
        self.wait_for_all = config.wait_for_all
        self._waiting = config.wait_for_all  # votequorum wait_for_all_status
        self.members: frozenset[str] = frozenset({local})
        self.witness: bool | None = None
        self.sync_until: int | None = None  # syncing: waiting for the vote on the new members
        self.since = now
        self.verdict = self._compute(None)

    # ------------------------------------------------------------------ queries

    @property
    def quorate(self) -> bool:
        return self.verdict.quorate

    @property
    def mode(self) -> str:
        """OK (claim and keep groups), FREEZE (keep, start nothing) or STOP (stop everything)."""
        if self.policy == "ignore" or (self.verdict.quorate and not self.verdict.syncing):
            return OK
        return FREEZE if self.policy == "freeze" or self.verdict.syncing else STOP

    def witness_state(self) -> str:
        if not self.device:
            return "none"
        if self.sync_until is not None:
            return "waiting"
        return {None: "unknown", True: "vote", False: "no vote"}[self.witness]

    def next_deadline(self) -> int | None:
        return self.sync_until

    def snapshot(self, now: int) -> dict:
        v = self.verdict
        out = {"quorate": v.quorate, "votes": v.votes, "expected": v.expected, "needed": v.needed,
               "witness": v.witness, "policy": self.policy, "mode": self.mode,
               "two_node": self.two_node, "wait_for_all": self.wait_for_all,
               "waiting_for_all": v.waiting_for_all, "members": list(v.members),
               "since_age_ms": now - self.since}
        if self.sync_until is not None:
            out["witness_wait_ms"] = self.sync_until - now
        return out

    def renew_until(self, last_heard: Mapping[str, int | None], window: int) -> int | None:
        """Until when may this node renew its VIP leases (see the module docstring)? None: no
        limit (policies freeze and ignore, two_node, or this node's own votes are a majority).
        `last_heard`: when each member peer was last heard (membership), ms."""
        if self.policy != "stop" or self.two_node:
            return None
        needed = self.verdict.needed
        votes = self.node_votes[self.local]
        if self.device and self.witness and self.sync_until is None:
            votes += DEVICE_VOTES
        if votes >= needed:
            return None
        heard = sorted(((t, n) for n, t in last_heard.items()
                        if n in self.members and n != self.local and t is not None), reverse=True)
        for t, n in heard:
            votes += self.node_votes[n]
            if votes >= needed:
                return t + window
        return 0  # no majority heard at all: renew nothing

    # ------------------------------------------------------------------ inputs

    def set_members(self, alive: Iterable[str], now: int) -> bool:
        """The peers membership reports alive (up or active); this node always counts."""
        members = frozenset(n for n in alive if n in self.node_votes) | {self.local}
        if members == self.members:
            return False
        self.members = members
        if self.device and (self.witness is not None or self.sync_until is not None) \
                and self._vote_matters():
            self.sync_until = now + self.sync_timeout  # votequorum_sync_init: wait for the poll
        else:
            self.sync_until = None
        return self._update(now)

    def on_witness(self, vote: bool | None, now: int, members: Iterable[str] | None = None) -> bool:
        """The qdevice client's report: True (qnetd gives us its vote), False (it gives it to
        the other side), None (qnetd unreachable or not answered yet). With `members`, the
        membership the vote was given for: a report for other members is stale and ignored."""
        if vote is not None and not isinstance(vote, bool):
            raise ValueError(f"witness vote must be True, False or None, got {vote!r}")
        if not self.device:
            raise ValueError("a witness vote arrived but no quorum device is configured")
        if members is not None and (frozenset(members) | {self.local}) != self.members:
            return False  # qdevice_poll with an old ring id: ignored
        if vote == self.witness and self.sync_until is None:
            return False
        self.witness = vote
        self.sync_until = None
        return self._update(now)

    def on_timer(self, now: int) -> bool:
        """A witness sync that timed out: the vote counts as lost (votequorum qdevice_timer_fn)."""
        if self.sync_until is None or now < self.sync_until:
            return False
        self.sync_until = None
        self.witness = None
        return self._update(now)

    # ------------------------------------------------------------------ the rule

    def _vote_matters(self) -> bool:
        """Would the witness's vote change the answer for the current members?"""
        return self._count(False)[0] != self._count(True)[0]

    def _count(self, with_vote: bool) -> tuple[bool, int, int, int]:
        votes = sum(self.node_votes[n] for n in self.members)
        if self.device and with_vote:
            votes += DEVICE_VOTES
        expected = max(self.configured_expected, votes)  # votequorum: never below the votes present
        needed = 1 if self.two_node else expected // 2 + 1  # calculate_quorum: (expected + 2) / 2
        return votes >= needed, votes, expected, needed

    def _update(self, now: int) -> bool:
        old = self.verdict
        self.verdict = self._compute(old)
        if self.verdict.quorate != old.quorate:
            self.since = now
        return self.verdict != old

    def _compute(self, old: Verdict | None) -> Verdict:
        members = tuple(sorted(self.members))
        syncing = self.sync_until is not None
        ok, votes, expected, needed = self._count(bool(self.witness) and not syncing)
        if syncing and old is not None:
            # votequorum keeps the old verdict until the sync ends
            return Verdict(old.quorate, votes, expected, needed, self.witness_state(),
                           self._waiting, members, True)
        if self._waiting and set(self.members) == set(self.nodes):
            self._waiting = False  # are_we_quorate: all nodes seen at once
        quorate = not self._waiting and ok
        if self.wait_for_all and not quorate:
            self._waiting = True  # are_we_quorate: inquorate again, wait for all again
        return Verdict(quorate, votes, expected, needed, self.witness_state(), self._waiting, members)
