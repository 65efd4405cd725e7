"""The witness vote is tied to the membership it was cast for (cluster/quorum.py, pending):
after a membership change it neither lets a node start groups nor makes the holder stop."""

from hadirector.cluster.quorum import FREEZE, OK, STOP, Quorum
from hadirector.config.model import Quorum as QuorumConfig, QuorumDevice

NODES = ("alpha", "beta")


def core(local: str) -> Quorum:
    return Quorum(QuorumConfig(device=QuorumDevice(host="198.18.9.1", tls=False)), NODES, local, 0)


def test_holder_keeps_its_groups_while_the_witness_answers_for_the_new_membership():
    q = core("alpha")
    q.set_members({"beta"}, 1)
    assert q.on_witness(True, 2) and q.mode == OK
    assert q.set_members(set(), 10)  # the peer is gone
    assert q.witness_state() == "pending" and q.mode == FREEZE and not q.quorate  # not STOP
    assert q.on_witness(True, 12)  # the same vote, now for {alpha}: counts again
    assert q.mode == OK and q.verdict.votes == 2 and q.witness_state() == "vote"


def test_loser_does_not_start_on_a_vote_cast_for_the_old_membership():
    q = core("beta")
    q.set_members({"alpha"}, 1)
    q.on_witness(True, 2)
    q.set_members(set(), 10)
    assert q.mode == FREEZE and q.verdict.votes == 1  # the old ACK does not count
    assert q.on_witness(False, 11) and q.mode == STOP


def test_a_node_that_was_stopped_stays_stopped_while_pending():
    q = core("beta")
    q.on_witness(False, 1)
    assert q.mode == STOP
    q.set_members({"alpha"}, 5)
    assert q.mode == OK  # two of three votes without the witness
    q.set_members(set(), 9)
    assert q.mode == FREEZE  # was OK just before this change
    q.on_witness(None, 10)
    assert q.mode == STOP


def test_losing_the_witness_alone_moves_nothing():
    q = core("alpha")
    q.set_members({"beta"}, 1)
    q.on_witness(True, 2)
    assert q.on_witness(None, 3) and q.mode == OK and q.verdict.votes == 2
