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

Witness states for `status`: "none" (no device configured), "unknown" (configured; the client
has not reported, or lost the witness: `on_witness(None)`), "vote" (qnetd gives us its vote),
"no vote" (qnetd gives it to the other side), "pending" (see below).

A witness vote belongs to a membership (votequorum takes a qdevice vote only for the ring it was
cast for). When the members change, the vote held is pending until the qdevice client reports
qnetd's answer for the new membership (cluster/qdevice.py reports it even when it repeats the old
vote, and None if qnetd does not answer ACK/NACK in time): meanwhile it does not count, so no
group is started on a vote cast for another membership, and a node that would lose quorum only
because of that freezes (keeps what it runs) instead of stopping, so the holder does not drop its
groups for the milliseconds qnetd takes to answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

OK, FREEZE, STOP = "ok", "freeze", "stop"  # what the arbiter may do (mode)
DEVICE_VOTES = 1  # the qnetd device's votes (corosync-qdevice: quorum.device.votes)


@dataclass(frozen=True)
class Verdict:
    quorate: bool
    votes: int
    expected: int
    needed: int
    witness: str
    waiting_for_all: bool


class Quorum:
    """Args: config: a config.model.Quorum; nodes: every cluster node; local: this node;
    now: start time, ms.

    Inputs: set_members(alive, now), on_witness(vote, now); each returns True when the verdict
    changed (read `verdict`, `mode`). `snapshot(now)` is plain data for `hadirector status`.
    """

    def __init__(self, config, nodes: Iterable[str], local: str, now: int):
        self.config = config
        self.nodes = tuple(nodes)
        self.local = local
        self.policy = config.no_quorum_policy
        self.node_votes = {n: config.votes.get(n, 1) for n in self.nodes}
        self.device = config.device is not None
        self.two_node = (len(self.nodes) == 2 and not self.device and not config.votes
                         and config.expected_votes is None)
        self.configured_expected = config.expected_votes or (
            sum(self.node_votes.values()) + (DEVICE_VOTES if self.device else 0))
        self.wait_for_all = config.wait_for_all
        self._waiting = config.wait_for_all  # votequorum wait_for_all_status
        self.members: frozenset[str] = frozenset({local})
        self.witness: bool | None = None
        self.witness_pending = False  # the members changed since the witness last answered
        self._mode_before_pending = OK
        self.since = now
        self.verdict = self._compute()

    # ------------------------------------------------------------------ queries

    @property
    def quorate(self) -> bool:
        return self.verdict.quorate

    @property
    def mode(self) -> str:
        """OK (claim and keep groups), FREEZE (keep, start nothing) or STOP (stop everything)."""
        if self.verdict.quorate or self.policy == "ignore":
            return OK
        if self.witness_pending and self._mode_before_pending != STOP:
            return FREEZE  # the witness has not answered for these members yet
        return FREEZE if self.policy == "freeze" else STOP

    def witness_state(self) -> str:
        if not self.device:
            return "none"
        if self.witness_pending:
            return "pending"
        return {None: "unknown", True: "vote", False: "no vote"}[self.witness]

    def snapshot(self, now: int) -> dict:
        v = self.verdict
        return {"quorate": v.quorate, "votes": v.votes, "expected": v.expected, "needed": v.needed,
                "witness": v.witness, "policy": self.policy, "mode": self.mode,
                "two_node": self.two_node, "wait_for_all": self.wait_for_all,
                "waiting_for_all": v.waiting_for_all, "members": sorted(self.members),
                "since_age_ms": now - self.since}

    # ------------------------------------------------------------------ inputs

    def set_members(self, alive: Iterable[str], now: int) -> bool:
        """The peers membership reports alive (up or active); this node always counts."""
        members = frozenset(n for n in alive if n in self.node_votes) | {self.local}
        if members == self.members:
            return False
        if self.device:
            self._mode_before_pending = self.mode  # what this node may do just before the change
            self.witness_pending = True
        self.members = members
        return self._update(now)

    def on_witness(self, vote: bool | None, now: int) -> bool:
        """The qdevice client's report: True (qnetd gives us its vote), False (it gives it to
        the other side), None (qnetd unreachable or not answered yet)."""
        if vote is not None and not isinstance(vote, bool):
            raise ValueError(f"witness vote must be True, False or None, got {vote!r}")
        if not self.device:
            raise ValueError("a witness vote arrived but no quorum device is configured")
        if vote == self.witness and not self.witness_pending:
            return False
        self.witness = vote
        self.witness_pending = False
        return self._update(now)

    # ------------------------------------------------------------------ the rule

    def _update(self, now: int) -> bool:
        old = self.verdict
        self.verdict = self._compute()
        if self.verdict.quorate != old.quorate:
            self.since = now
        return self.verdict != old

    def _compute(self) -> Verdict:
        votes = sum(self.node_votes[n] for n in self.members)
        if self.device and self.witness and not self.witness_pending:
            votes += DEVICE_VOTES
        expected = max(self.configured_expected, votes)  # votequorum: never below the votes present
        needed = 1 if self.two_node else expected // 2 + 1  # calculate_quorum: (expected + 2) / 2
        if self._waiting and set(self.members) == set(self.nodes):
            self._waiting = False  # are_we_quorate: all nodes seen at once
        quorate = not self._waiting and votes >= needed
        if self.wait_for_all and not quorate:
            self._waiting = True  # are_we_quorate: inquorate again, wait for all again
        return Verdict(quorate, votes, expected, needed, self.witness_state(), self._waiting)
