"""Membership with a hand-advanced clock (int ms): keepalive, warntime, deadtime, initdead, links."""

import pytest

from hadirector.cluster.actions import (LateHeartbeat, LinkDown, LinkUp, NodeChanged, PeerRestarted,
                                        Send, Settled, Stalled, TimingMismatch)
from hadirector.cluster.membership import (ACTIVE, DEAD, INIT, NODE_TRANSITIONS, SILENT, UP,
                                           Membership, TransitionError, _step)
from hadirector.cluster.messages import Announcement, Kind, Message, Status
from hadirector.config.model import Timing

T = Timing(keepalive="100ms", deadtime="1000ms", warntime="400ms", initdead="3000ms")
LINKS = ("ucast:eth0", "ucast:eth1")


def mk(now=0, nodes=("a", "b", "c")):
    return Membership("a", nodes, LINKS, T, now)


class Peer:
    """Builds the packets of one peer."""

    def __init__(self, name="b", gen=1, status=Status.ACTIVE):
        self.name, self.gen, self.seq, self.status = name, gen, 0, status

    def msg(self, kind=Kind.HEARTBEAT, status=None, keepalive=100, deadtime=1000):
        self.seq += 1
        return Message(kind, "c", self.name, self.gen, self.seq, keepalive, deadtime,
                       Announcement(status or self.status))


def kinds(events, cls):
    return [e for e in events if isinstance(e, cls)]


def test_keepalive_sends_on_every_link():
    m = mk(now=1000)
    assert m.next_deadline() == 1000
    assert m.on_timer(1000) == [Send(LINKS[0]), Send(LINKS[1])]
    assert m.next_deadline() == 1100
    assert kinds(m.on_timer(1099), Send) == []
    assert kinds(m.on_timer(1100), Send) == [Send(LINKS[0]), Send(LINKS[1])]
    # a late wake-up sends once, not a burst, and keeps the rhythm from now
    assert len(kinds(m.on_timer(1450), Send)) == 2
    assert m.next_deadline() <= 1550


def test_first_packet_brings_node_up_then_active_and_settles_when_all_heard():
    m = mk()
    b, c = Peer("b", status=Status.STARTING), Peer("c")
    ev = m.on_packet(LINKS[0], b.msg(), 10)
    assert NodeChanged("b", INIT, UP, f"heard on {LINKS[0]}") in ev
    assert LinkUp("b", LINKS[0]) in ev
    assert not kinds(ev, Settled) and not m.settled
    ev = m.on_packet(LINKS[0], c.msg(), 20)
    assert NodeChanged("c", INIT, ACTIVE, f"heard on {LINKS[0]}") in ev
    assert kinds(ev, Settled) == [Settled("every peer heard")]
    ev = m.on_packet(LINKS[1], b.msg(status=Status.ACTIVE), 30)
    assert NodeChanged("b", UP, ACTIVE, f"heard on {LINKS[1]}") in ev
    assert m.alive() == {"b", "c"}
    assert m.link_state("b", LINKS[1]) == UP


def test_initdead_not_deadtime_for_a_node_never_heard():
    m = mk(nodes=("a", "b"))
    m.on_timer(0)
    assert not kinds(m.on_timer(2999), NodeChanged)  # far past deadtime, but initdead rules
    assert m.node_state("b") == INIT
    assert m.next_deadline() <= 3000
    ev = m.on_timer(3000)
    assert NodeChanged("b", INIT, DEAD, "never heard within initdead (3000 ms)") in ev
    assert len(kinds(ev, LinkDown)) == 2
    assert kinds(ev, Settled) and "never heard: b" in kinds(ev, Settled)[0].reason


def test_dead_only_when_silent_on_every_link_with_ms_resolution():
    m = mk(nodes=("a", "b"))
    b = Peer()
    m.on_packet(LINKS[0], b.msg(), 0)
    m.on_packet(LINKS[1], b.msg(), 0)
    # eth1 goes quiet; eth0 keeps talking
    for t in range(100, 1500, 100):
        m.on_packet(LINKS[0], b.msg(), t)
        ev = m.on_timer(t)
        if t == 1000:
            assert ev.count(LinkDown("b", LINKS[1], "silent 1000 ms")) == 1
        assert not kinds(ev, NodeChanged)
    assert m.node_state("b") == ACTIVE and m.link_state("b", LINKS[1]) == DEAD
    # now both quiet: last packet at 1400
    assert m.next_deadline() == 1500  # our keepalive; the peer's deadlines come later
    for t in range(1500, 2400, 100):  # the driver wakes every keepalive
        assert not kinds(m.on_timer(t), NodeChanged)
    assert not kinds(m.on_timer(2399), NodeChanged)
    ev = m.on_timer(2400)
    assert NodeChanged("b", ACTIVE, DEAD, "silent on every link for 1000 ms") in ev
    assert LinkDown("b", LINKS[0], "silent 1000 ms") in ev
    # it comes back on eth1 only
    ev = m.on_packet(LINKS[1], b.msg(), 2500)
    assert LinkUp("b", LINKS[1]) in ev and NodeChanged("b", DEAD, ACTIVE, f"heard on {LINKS[1]}") in ev


def test_warntime_warns_once_per_episode():
    m = mk(nodes=("a", "b"))
    b = Peer()
    m.on_packet(LINKS[0], b.msg(), 0)
    assert not kinds(m.on_timer(399), LateHeartbeat)
    assert kinds(m.on_timer(400), LateHeartbeat) == [LateHeartbeat("b", 400)]
    assert not kinds(m.on_timer(600), LateHeartbeat)
    m.on_packet(LINKS[0], b.msg(), 700)
    assert not kinds(m.on_timer(1099), LateHeartbeat)
    assert kinds(m.on_timer(1150), LateHeartbeat) == [LateHeartbeat("b", 450)]


def test_restart_is_detected_from_the_generation():
    m = mk(nodes=("a", "b"))
    old, new = Peer(gen=4), Peer(gen=5, status=Status.STARTING)
    m.on_packet(LINKS[0], old.msg(), 0)
    ev = m.on_packet(LINKS[0], new.msg(), 100)
    assert PeerRestarted("b", 4, 5) in ev
    assert NodeChanged("b", ACTIVE, UP, f"heard on {LINKS[0]}") in ev
    assert m.generation("b") == 5
    # a late packet of the old generation is no sign of life and changes nothing
    assert m.on_packet(LINKS[1], old.msg(), 200) == []


def test_leave_is_dead_at_once_and_a_late_older_packet_does_not_revive():
    m = mk(nodes=("a", "b"))
    b = Peer()
    early = b.msg()
    m.on_packet(LINKS[0], b.msg(), 0)
    ev = m.on_packet(LINKS[1], b.msg(kind=Kind.LEAVE, status=Status.LEAVING), 50)
    assert NodeChanged("b", ACTIVE, DEAD, "left the cluster (clean shutdown)") in ev
    assert m.on_packet(LINKS[0], early, 60) == []
    assert m.node_state("b") == DEAD
    # a second copy of the LEAVE on the other link changes nothing
    assert not kinds(m.on_packet(LINKS[0], b.msg(kind=Kind.LEAVE, status=Status.LEAVING), 70),
                     NodeChanged)


def test_timing_mismatch_reported_once_per_generation():
    m = mk(nodes=("a", "b"))
    b = Peer()
    assert kinds(m.on_packet(LINKS[0], b.msg(keepalive=2000), 0), TimingMismatch) == \
        [TimingMismatch("b", 2000, 1000)]
    assert not kinds(m.on_packet(LINKS[0], b.msg(keepalive=2000), 10), TimingMismatch)


def test_next_deadline_is_exact():
    m = mk(nodes=("a", "b"))
    m.on_timer(0)
    b = Peer()
    m.on_packet(LINKS[0], b.msg(), 50)
    m.on_packet(LINKS[1], b.msg(), 80)
    for _ in range(30):
        t = m.next_deadline()
        assert m.on_timer(t - 1) == [] or t - 1 < 0
        assert m.on_timer(t) != [] or m.node_state("b") == DEAD
        if m.node_state("b") == DEAD:
            break
    assert m.node_state("b") == DEAD


def test_unknown_transition_names_state_and_event():
    with pytest.raises(TransitionError, match="'dead'.*'silent'"):
        _step(NODE_TRANSITIONS, "node b", DEAD, SILENT)
    with pytest.raises(TransitionError, match="'up'.*'bogus'"):
        _step(NODE_TRANSITIONS, "node b", UP, "bogus")


def test_bad_inputs_are_named():
    m = mk()
    with pytest.raises(ValueError, match="'zed'"):
        m.on_packet(LINKS[0], Peer("zed").msg(), 0)
    with pytest.raises(ValueError, match="'eth9'"):
        m.on_packet("eth9", Peer().msg(), 0)


def test_our_own_stall_gives_peers_a_grace_instead_of_a_death():
    m = mk(nodes=("a", "b"))
    b = Peer()
    m.on_packet(LINKS[0], b.msg(), 0)
    for t in range(0, 600, 100):
        m.on_timer(t)
    ev = m.on_timer(1500)  # we slept 1000 ms: b's packets may sit in our socket buffer
    assert Stalled(1000) in ev and not kinds(ev, NodeChanged) and not kinds(ev, LinkDown)
    assert m.next_deadline() <= 1600
    ev = m.on_packet(LINKS[0], b.msg(), 1510)  # they did
    assert m.node_state("b") == ACTIVE
    # the same stall with a peer that really died: dead two keepalives later than otherwise
    m = mk(nodes=("a", "b"))
    m.on_packet(LINKS[0], Peer().msg(), 0)
    for t in range(0, 600, 100):
        m.on_timer(t)
    assert not kinds(m.on_timer(1500), NodeChanged)
    assert not kinds(m.on_timer(1600), NodeChanged)
    assert kinds(m.on_timer(1700), NodeChanged)[0].new == DEAD
