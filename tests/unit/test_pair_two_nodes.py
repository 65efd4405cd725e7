"""Two complete node cores (codec + membership + connectivity + arbiter) joined by simulated links
with loss, delay, duplication and replay (cluster/sim.py; seeded, so every run is the same).

Timing in these tests: keepalive 100 ms, warntime 300 ms, deadtime 500 ms, initdead 1000 ms.
Each test also checks the safety invariant: no moment at which two nodes run the same group
(from AcquireGroup until the stop has completed), except inside partitions the test made.
"""

import pytest

from hadirector.cluster.actions import (AcquireGroup, LateHeartbeat, LeaveComplete, LinkDown,
                                        NodeChanged, NotHeardBy, PeerRestarted, Reannounce,
                                        ReleaseGroup,
                                        RequestResult, Settled, SplitBrain, Stalled, Transmit)
from hadirector.cluster.messages import Kind, decode
from hadirector.cluster.sim import LinkModel, Sim, cluster_config

LOSSY = LinkModel(loss=0.05, delay=(1, 20), dup=0.05, replay=0.05)
DEADTIME = 500


def sim(seed=7, link=LOSSY, **cfg):
    s = Sim(cluster_config(**cfg), seed=seed, link=link)
    s.run(2000)
    return s


def owners(s):
    return {g.name: s.owner(g.name) for g in s.config.groups}


def after(events, t0):
    return [(t, a) for t, a in events if t >= t0]


# --------------------------------------------------------------------------- start-up

def test_start_each_group_on_its_preferred_node_after_both_heard():
    s = sim()
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    for name in ("alpha", "beta"):
        settled = s.events(name, Settled)[0][0]
        assert all(t >= settled for t, _ in s.events(name, AcquireGroup))
    assert s.violations == []


def test_a_lone_node_waits_for_initdead_then_takes_everything():
    s = Sim(cluster_config(), seed=3, link=LOSSY, start=False)
    s.boot("alpha", generation=1)
    s.run(999)
    assert s.events("alpha", AcquireGroup) == []
    s.run(1000)
    assert sorted(a.group for _, a in s.events("alpha", AcquireGroup)) == ["g-alpha", "g-beta"]
    first = min(t for t, _ in s.events("alpha", AcquireGroup))
    assert 1000 <= first < 1100
    # the peer arrives later: with auto_failback on it gets its group back, handshake and all
    s.boot("beta", generation=1)
    s.run(2000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.violations == []


# --------------------------------------------------------------------------- failover

def test_failover_after_deadtime_when_the_holder_goes_silent():
    s = sim()
    s.crash("alpha")
    t0 = s.now
    s.run(2000)
    (t, _), = [(t, a) for t, a in s.events("beta", AcquireGroup) if a.group == "g-alpha"]
    assert DEADTIME <= t - t0 <= DEADTIME + 150
    dead = [(t, e) for t, e in s.events("beta", NodeChanged) if e.new == "dead"]
    assert dead and dead[0][1].node == "alpha"
    assert [e for _, e in s.events("beta", LateHeartbeat)] and owners(s)["g-alpha"] == "beta"
    assert s.violations == []


def test_no_failover_when_one_of_two_links_is_cut():
    s = sim()
    t0 = s.now
    s.cut("ucast:eth0", "alpha", "beta")
    s.run(5000)
    for name in ("alpha", "beta"):
        assert after(s.events(name, AcquireGroup), t0) == []
        assert after(s.events(name, ReleaseGroup), t0) == []
        assert not [e for _, e in after(s.events(name, NodeChanged), t0)]
        downs = [e for _, e in after(s.events(name, LinkDown), t0)]
        assert [d.link for d in downs] == ["ucast:eth0"]
    assert s.nodes["alpha"].core.membership.link_state("beta", "ucast:eth0") == "dead"
    assert s.nodes["alpha"].core.membership.node_state("beta") == "active"
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}


@pytest.mark.parametrize("fb,back", [("on", True), ("legacy", True), ("off", False)])
def test_auto_failback(fb, back):
    s = sim(auto_failback=fb)
    s.crash("alpha")
    s.run(2000)
    assert owners(s) == {"g-alpha": "beta", "g-beta": "beta"}
    s.restart("alpha")
    s.run(3000)
    assert owners(s)["g-alpha"] == ("alpha" if back else "beta")
    assert owners(s)["g-beta"] == "beta"
    assert s.violations == []


def test_restart_within_deadtime_is_seen_as_a_restart():
    s = sim()
    s.kill("alpha")  # resources stay up; the daemon comes back at once
    s.run(100)
    s.restart("alpha")
    s.run(3000)
    assert [e.node for _, e in s.events("beta", PeerRestarted)] == ["alpha"]
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.violations == []


@pytest.mark.parametrize("packets_first", [False, True])
def test_a_frozen_node_that_wakes_up_does_not_grab_its_peers_groups(packets_first):
    """alpha stops being scheduled for longer than deadtime (SIGSTOP, an overloaded VM). beta
    rightly takes g-alpha; alpha, waking up, must not also declare beta dead for a silence it
    did not watch (beta's packets wait in its socket buffer): it only sorts out g-alpha. Both
    orders of resuming: the overdue timer first, or (asyncio) the buffered datagrams first."""
    s = sim()
    s.freeze("alpha")
    t0 = s.now
    s.run(800)
    assert s.running("g-alpha") == ["alpha", "beta"]  # beta took it, alpha still runs it
    s.thaw("alpha", packets_first=packets_first)
    t1 = s.now
    s.run(2000)
    assert [e for _, e in after(s.events("alpha", Stalled), t1)]
    assert not [a for _, a in after(s.events("alpha", AcquireGroup), t1) if a.group == "g-beta"]
    assert not [e for _, e in after(s.events("alpha", NodeChanged), t1)]
    assert not after(s.events("alpha", NotHeardBy), t1)  # no release on stale evidence
    # alpha knows it stalled and gives way to beta, which kept serving; auto_failback (on) then
    # hands g-alpha back to its preferred node: one move after the resume, release before acquire
    rel = [a.reason for _, a in after(s.events("alpha", ReleaseGroup), t1)]
    assert rel == ["split brain: this node stalled; beta kept it running"]
    assert [a.reason for _, a in after(s.events("beta", ReleaseGroup), t1)] == \
        ["auto_failback to preferred node alpha"]
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.overlaps_outside((t0, t1 + 300)) == []


def test_clean_shutdown_hands_over_without_waiting_for_deadtime():
    s = sim()
    t0 = s.now
    s.call("alpha", "shutdown")
    s.run(1000)
    assert s.events("alpha", LeaveComplete)
    (t, _), = [(t, a) for t, a in s.events("beta", AcquireGroup) if a.group == "g-alpha"]
    assert t - t0 < DEADTIME
    assert owners(s)["g-alpha"] == "beta"
    assert s.violations == []


def test_failed_start_moves_the_group_to_the_peer():
    s = Sim(cluster_config(), seed=5, link=LOSSY, start=False)
    s.fail_start.add(("alpha", "g-alpha"))
    s.boot("alpha", 1)
    s.boot("beta", 1)
    s.run(3000)
    assert owners(s) == {"g-alpha": "beta", "g-beta": "beta"}
    assert s.nodes["alpha"].core.arbiter.announcement().group("g-alpha").failed
    assert s.violations == []


# --------------------------------------------------------------------------- operator

def test_standby_and_takeover_move_groups_release_before_acquire():
    s = sim()
    t0 = s.now
    out = s.call("alpha", "standby", "all")
    assert RequestResult("standby all", "g-alpha", True, "handing over to beta") in out
    s.run(1000)
    assert owners(s) == {"g-alpha": "beta", "g-beta": "beta"}
    # beta started only after alpha's stop completed (the sim counts a group as running until
    # the stop is done, so an overlap would be a violation)
    rel = [t for t, a in after(s.events("alpha", ReleaseGroup), t0) if a.group == "g-alpha"]
    acq = [t for t, a in after(s.events("beta", AcquireGroup), t0) if a.group == "g-alpha"]
    assert rel and acq and acq[0] > rel[0]
    # auto_failback on does not undo a standby
    s.run(3000)
    assert owners(s)["g-alpha"] == "beta"
    s.call("alpha", "takeover", "local")
    s.run(1000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    s.call("beta", "standby", "foreign")  # nothing foreign held: refused, nothing moves
    s.call("alpha", "takeover", "all")
    s.run(1000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "alpha"}
    s.call("alpha", "standby", "failback")
    s.run(1000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.violations == []


# --------------------------------------------------------------------------- split brain

def test_healed_partition_converges_to_one_owner():
    s = sim()
    t0 = s.now
    s.partition(("alpha",), ("beta",))
    s.run(3000)
    assert s.running("g-alpha") == ["alpha", "beta"]  # both took everything: split brain
    s.heal()
    t1 = s.now
    s.run(2000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.running("g-alpha") == ["alpha"] and s.running("g-beta") == ["beta"]
    # whoever noticed first reports it; the keeper re-announces once the loser has stopped
    sb = [e for n in ("alpha", "beta") for _, e in s.events(n, SplitBrain)]
    assert SplitBrain("g-alpha", ("alpha", "beta"), "alpha") in sb
    assert SplitBrain("g-beta", ("alpha", "beta"), "beta") in sb
    assert Reannounce("g-alpha") in [a for _, a in after(s.events("alpha", Reannounce), t1)]
    assert Reannounce("g-beta") in [a for _, a in after(s.events("beta", Reannounce), t1)]
    last_overlap = max(t for t, _, _ in s.violations)
    assert last_overlap < t1 + 500  # resolved within a few heartbeats of the heal
    assert s.overlaps_outside((t0, t1 + 500)) == []


# --------------------------------------------------------------------------- one-way links (firewalls)

def test_firewall_dropping_heartbeats_one_way_from_the_start_never_duplicates():
    """beta's firewall drops alpha's heartbeats (seeds/003 flushes iptables on both nodes as a
    set-up step; a node where that was missed): beta never hears alpha, alpha hears beta. beta takes everything after initdead;
    alpha's claims are never granted, so nothing ever runs twice, and alpha says why."""
    s = Sim(cluster_config(), seed=2, link=LOSSY, start=False)
    s.cut(None, "alpha", "beta", both=False)
    s.boot("alpha", 1)
    s.boot("beta", 1)
    s.run(4000)
    assert s.running("g-alpha") == ["beta"] and s.running("g-beta") == ["beta"]
    assert s.events("alpha", AcquireGroup) == []
    assert [e.node for _, e in s.events("alpha", NotHeardBy)] == ["beta"]
    assert s.violations == []
    s.heal()  # firewall fixed: with auto_failback on alpha gets its group back
    s.run(2000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.violations == []


def test_one_way_link_at_run_time_the_side_that_is_heard_yields():
    s = sim()
    s.cut(None, "alpha", "beta", both=False)  # beta stops hearing alpha
    t0 = s.now
    s.run(3000)
    # beta declared alpha dead and took g-alpha; alpha, seeing beta run it without hearing
    # alpha, let go: beta could never have been told
    assert s.running("g-alpha") == ["beta"] and s.running("g-beta") == ["beta"]
    rel = [a.reason for _, a in after(s.events("alpha", ReleaseGroup), t0)]
    assert rel == ["split brain: beta runs it and cannot hear us"]
    assert [e.node for _, e in s.events("alpha", NotHeardBy)] == ["beta"]
    # only until alpha's stop finished: beta's announcements must have left alpha out for
    # deaf_after (deadtime) from the first that did, so that one stale one proves nothing
    overlap = [t for t, _, _ in s.violations]
    assert overlap and max(overlap) - min(overlap) < DEADTIME + 300
    t1 = s.now
    s.run(5000)  # and it stays that way: no flapping
    assert not after(s.events("alpha", AcquireGroup), t1)
    assert not after(s.events("beta", ReleaseGroup), t1)


# --------------------------------------------------------------------------- hostile packets

def test_replayed_and_forged_packets_change_nothing_and_are_counted():
    s = sim(link=LinkModel())
    old = [a.data for _, a in s.events("alpha", Transmit)][:40]
    beta = s.nodes["beta"]
    before_counts = dict(beta.core.counters)
    before_state = beta.core.arbiter.announcement()
    n_actions = len(beta.actions)
    for data in old:
        s.inject("beta", "ucast:eth0", data)
    forged = bytearray(old[-1])
    forged[20] ^= 0x40
    s.inject("beta", "ucast:eth1", bytes(forged))
    # a forgery by someone without the key, claiming alpha is leaving
    from hadirector.cluster.auth import Authenticator
    from hadirector.cluster.messages import Announcement, Message, Status, encode
    fake = encode(Message(Kind.LEAVE, "sim", "alpha", 99, 1, 100, 500, Announcement(Status.LEAVING)),
                  Authenticator("sha256", b"guessed", 1))
    s.inject("beta", "ucast:eth0", fake)
    s.run(1)
    counts = beta.core.counters
    assert counts["replayed"] - before_counts.get("replayed", 0) == 40
    assert counts["bad_auth"] - before_counts.get("bad_auth", 0) == 2
    assert beta.core.arbiter.announcement() == before_state
    assert not [a for _, a in beta.actions[n_actions:] if not isinstance(a, (Transmit,))
                and type(a).__name__ != "PacketDropped"]
    assert beta.core.membership.node_state("alpha") == "active"


def test_replaying_a_dead_nodes_packets_does_not_keep_it_alive():
    s = sim(link=LinkModel())
    recorded = [a.data for _, a in s.events("alpha", Transmit)]
    s.crash("alpha")
    t0 = s.now
    assert len(recorded) > 40
    for i, data in enumerate(recorded):  # an attacker replays alpha's traffic, 10 ms apart
        s.inject("beta", "ucast:eth0", data, at=t0 + 10 * i)
    s.run(2000)
    acq = [t for t, a in s.events("beta", AcquireGroup) if a.group == "g-alpha"]
    assert acq and acq[0] - t0 <= DEADTIME + 150
    assert s.nodes["beta"].core.counters["replayed"] == len(recorded)


def test_duplicates_and_replays_on_a_lossy_link_are_dropped_quietly():
    s = sim(seed=11, link=LinkModel(loss=0.1, delay=(1, 40), dup=0.3, replay=0.3))
    s.run(5000)
    c = s.nodes["alpha"].core.counters
    assert c["replayed"] > 50 and c["ok"] > 50
    assert set(c) <= {"ok", "replayed"}
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert not s.events("alpha", ReleaseGroup) and s.violations == []


def test_every_datagram_is_a_valid_message_of_this_cluster():
    s = sim(link=LinkModel())
    auth = s.nodes["alpha"].core.auth
    kinds = {decode(a.data, auth).kind for _, a in s.events("alpha", Transmit)}
    assert kinds == {Kind.HEARTBEAT, Kind.UPDATE}


# --------------------------------------------------------------------------- connectivity (ipfail)

@pytest.mark.parametrize("fb", ["off", "on"])
def test_the_node_that_lost_its_ping_nodes_gives_up_its_groups(fb):
    pings = ("198.18.9.1", "198.18.9.2")
    s = Sim(cluster_config(ping=pings, auto_failback=fb), seed=4, link=LOSSY, start=False)
    for n in ("alpha", "beta"):
        s.set_reachable(n, pings)
        s.boot(n, 1)
    s.run(2000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    s.set_reachable("alpha", {"198.18.9.2"})  # alpha's uplink lost one router
    s.run(2000)  # deadping = deadtime = 500 ms
    assert owners(s) == {"g-alpha": "beta", "g-beta": "beta"}
    s.set_reachable("beta", {"198.18.9.2"})  # both see the same now
    s.run(2000)
    # off: nothing moves; on: alpha is as good as the holder again, which is a failback event
    assert owners(s) == {"g-alpha": "beta" if fb == "off" else "alpha", "g-beta": "beta"}
    s.set_reachable("alpha", pings)  # alpha better: it gets everything
    s.run(2000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "alpha"}
    assert s.violations == []


def test_crc_cluster_works_but_says_it_is_unauthenticated():
    s = sim(method="crc")
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert not s.nodes["alpha"].core.authenticated
    assert sim().nodes["alpha"].core.authenticated


# --------------------------------------------------------------------------- no flaps (issue 10)

def test_one_stale_announcement_does_not_make_the_holder_let_go():
    """beta stops hearing alpha for 700 ms (longer than deadtime), declares it dead and takes
    g-alpha; its announcements meanwhile leave alpha out. Then beta hears alpha again and lists
    it. alpha, which heard beta all along, must not read the few announcements that left it out
    as a one-way link: it keeps g-alpha (the keeper), beta gives it back: one move, no flap."""
    s = sim(link=LinkModel())
    t0 = s.now
    s.cut(None, "alpha", "beta", both=False)
    s.run(700)
    assert s.running("g-alpha") == ["alpha", "beta"]  # beta took it during the cut
    s.heal()
    t1 = s.now
    s.run(3000)
    assert not s.events("alpha", NotHeardBy)
    assert not [a for _, a in after(s.events("alpha", ReleaseGroup), t0)]
    assert [a.reason for _, a in after(s.events("beta", ReleaseGroup), t1)] == ["split brain: alpha keeps it"]
    assert not [a for _, a in after(s.events("alpha", AcquireGroup), t0)]
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.overlaps_outside((t0, t1 + 300)) == []
