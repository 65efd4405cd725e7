"""The arbiter alone, fed with peers' announcements by hand (int ms clock)."""

import pytest

from hadirector.cluster.actions import (AcquireGroup, AnnounceNow, NotHeardBy, Reannounce,
                                        ReleaseGroup, RequestResult, SplitBrain, StartCancelled,
                                        StopStale)
from hadirector.cluster.arbiter import Arbiter
from hadirector.cluster.eventlog import describe
from hadirector.cluster.membership import TransitionError
from hadirector.cluster.messages import Announcement, Grant, GroupEntry, GroupState, Status

NONE, CLAIM, STARTING, HELD, STOPPING = (GroupState.NONE, GroupState.CLAIM, GroupState.STARTING,
                                         GroupState.HELD, GroupState.STOPPING)
GROUPS = {"web": "a", "db": "b"}


def ready(local="a", nodes=("a", "b"), groups=GROUPS, fb="on", settle=True, peers=None, **kw):
    """An arbiter past start-up clean-up (stale stops done) that settled with these live `peers`
    ({node: Announcement}; none = alone, so it takes every group)."""
    arb = Arbiter(local, nodes, groups, fb, **kw)
    out = arb.start(0)
    assert out[:len(groups)] == [StopStale(g) for g in groups]
    for g in groups:
        arb.group_stopped(g, 0)
    if peers:
        arb.set_alive(set(peers), 0, peers)
    if settle:
        arb.settle(0)
    return arb


def ann(status=Status.ACTIVE, score=0, groups=(), grants=(), requests=(), heard=("a", "b", "c")):
    return Announcement(status, score, 0, tuple(GroupEntry(*g) if isinstance(g, tuple) else g
                                                for g in groups), tuple(grants), tuple(requests),
                        tuple(heard))


def peer(arb, node, announcement, now=0):
    """Make `node` live with this announcement."""
    return arb.set_alive(set(arb.alive) | {node}, now, {node: announcement})


def acts(out, cls):
    return [a for a in out if isinstance(a, cls)]


def state(arb, g):
    return arb.local_groups[g].state


def hold(arb, g, peers_grant: dict[str, Announcement] | None = None):
    """Drive `g` to HELD on arb (its peers grant whatever it claims)."""
    for p in sorted(arb.alive):
        base = arb.peers[p]
        claim = arb.local_groups[g].claim
        peer(arb, p, Announcement(base.status, base.score, 0, base.groups,
                                  base.grants + (Grant(arb.local, g, claim),), base.requests,
                                  base.heard))
    assert state(arb, g) == STARTING
    arb.group_started(g, 0)
    assert state(arb, g) == HELD


# --------------------------------------------------------------------------- start-up

def test_start_stops_stale_and_claims_nothing_before_settle():
    arb = ready(settle=False)
    assert all(state(arb, g) == NONE for g in GROUPS)
    assert arb.announcement().status == Status.STARTING
    out = arb.settle(0)
    # alone (the peer dead after initdead): claims both and starts them, nobody to ask
    assert acts(out, AcquireGroup) == [AcquireGroup("web"), AcquireGroup("db")]


def test_stale_stop_blocks_grants_until_done():
    arb = Arbiter("a", ("a", "b"), GROUPS, "on")
    arb.start(0)
    peer(arb, "b", ann(groups=[("db", CLAIM, 3)]))
    assert arb.announcement().grants == ()  # a is still stopping a stale db
    arb.group_stopped("db", 0)
    assert arb.announcement().grants == (Grant("b", "db", 3),)


def test_starting_peer_is_not_robbed_of_its_groups():
    arb = ready(peers={"b": ann(status=Status.STARTING)})
    assert state(arb, "web") == CLAIM and state(arb, "db") == NONE


# --------------------------------------------------------------------------- claim / grant handshake

def test_claim_waits_for_the_grant_of_every_live_peer():
    arb = ready(nodes=("a", "b", "c"), peers={"b": ann(), "c": ann()})
    claim = arb.local_groups["web"].claim
    assert state(arb, "web") == CLAIM and claim > 0
    out = peer(arb, "b", ann(grants=[Grant("a", "web", claim)]))
    assert not acts(out, AcquireGroup)
    assert acts(peer(arb, "c", ann(grants=[Grant("a", "web", claim + 1)])), AcquireGroup) == []
    out = peer(arb, "c", ann(grants=[Grant("a", "web", claim)]))
    assert acts(out, AcquireGroup) == [AcquireGroup("web")]
    assert state(arb, "web") == STARTING


def test_grants_only_while_none():
    arb = ready(peers={"b": ann(groups=[("db", CLAIM, 9)])})
    assert Grant("b", "db", 9) in arb.announcement().grants
    hold(arb, "web")
    peer(arb, "b", ann(groups=[("web", CLAIM, 4)]))
    assert Grant("b", "web", 4) not in arb.announcement().grants


def test_conflicting_claims_the_preferred_node_wins():
    b = ready(local="b", peers={"a": ann(status=Status.STARTING)})
    assert state(b, "web") == NONE  # a is starting: its groups wait for it
    b.set_alive(set(), 0)  # a went silent: b claims and starts web
    assert state(b, "web") == STARTING
    b = ready(local="b", nodes=("a", "b", "c"), peers={"c": ann()})
    assert state(b, "web") == CLAIM  # a is dead, c is worse placed (name): b claims
    peer(b, "a", ann(groups=[("web", CLAIM, 1)]))  # a came up and claims its group at once
    assert state(b, "web") == NONE
    assert Grant("a", "web", 1) in b.announcement().grants


def test_dead_peer_groups_are_taken_without_its_grant():
    arb = ready(peers={"b": ann(groups=[("db", HELD)])})
    assert state(arb, "db") == NONE
    out = arb.set_alive(set(), 500)  # membership: b dead after deadtime
    assert AcquireGroup("db") in acts(out, AcquireGroup)


# --------------------------------------------------------------------------- release before acquire

def test_takeover_request_release_before_acquire():
    arb = ready(peers={"b": ann()})
    hold(arb, "web")
    out = peer(arb, "b", ann(requests=["web"]))
    assert acts(out, ReleaseGroup) == [ReleaseGroup("web", "takeover requested by b", drain=True)]
    assert arb.announcement().group("web") == GroupEntry("web", STOPPING, 0, "b")
    peer(arb, "b", ann(groups=[("web", CLAIM, 2)], requests=["web"]))
    assert Grant("b", "web", 2) not in arb.announcement().grants  # still stopping
    arb.group_stopped("web", 10)
    assert Grant("b", "web", 2) in arb.announcement().grants
    assert state(arb, "web") == NONE
    # b runs it: the handoff is over and a does not claim it back
    peer(arb, "b", ann(groups=[("web", HELD)]))
    assert arb.announcement().group("web") == GroupEntry("web")
    assert state(arb, "web") == NONE


def test_request_from_a_worse_connected_node_is_ignored_and_expires():
    arb = ready(peers={"b": ann(score=1)})
    arb.set_score(2, 2, 0)
    hold(arb, "web")
    out = peer(arb, "b", ann(score=1, requests=["web"]))
    assert not acts(out, ReleaseGroup)
    # and on b's side, its own request runs out
    b = ready(local="b", request_timeout=1000, peers={"a": ann(score=2, groups=[("web", HELD)])})
    # db is b's own group, but a's score is better: nobody gave it to b, so b asks for it
    assert acts(b.takeover("local", 100), RequestResult) == [
        RequestResult("takeover local", "db", True, "requested")]
    out = b.takeover("all", 100)
    assert RequestResult("takeover all", "web", True, "requested") in out
    assert "web" in b.announcement().requests
    assert b.next_deadline() == 1100
    assert acts(b.on_timer(1099), RequestResult) == []
    assert acts(b.on_timer(1100), RequestResult)[0].ok is False
    assert b.announcement().requests == ()


# --------------------------------------------------------------------------- connectivity

def test_better_score_takes_groups():
    arb = ready(peers={"b": ann(score=1)})
    arb.set_score(1, 2, 0)
    hold(arb, "web")
    out = peer(arb, "b", ann(score=2))
    assert acts(out, ReleaseGroup) == [ReleaseGroup("web", "b has better connectivity (2 > 1)")]
    assert arb.announcement().group("web").to == "b"


def test_unheld_group_goes_to_the_best_score_even_if_not_preferred():
    b = ready(local="b", peers={"a": ann(score=1)}, settle=False)
    b.set_score(2, 2, 0)
    b.settle(0)
    assert state(b, "web") == CLAIM


# --------------------------------------------------------------------------- auto_failback

@pytest.mark.parametrize("fb,moves", [("on", True), ("legacy", True), ("off", False)])
def test_failback_when_preferred_node_returns(fb, moves):
    b = ready(local="b", fb=fb)  # alone: b takes everything
    assert b.legacy_warning == (fb == "legacy")
    assert state(b, "web") == STARTING
    b.group_started("web", 0)
    out = peer(b, "a", ann(status=Status.STARTING), now=100)
    assert not acts(out, ReleaseGroup)  # a still starting
    out = peer(b, "a", ann(), now=200)
    assert bool(acts(out, ReleaseGroup)) == moves
    if moves:
        assert b.announcement().group("web").to == "a"


def test_no_failback_after_standby_even_with_auto_failback_on():
    a = ready(peers={"b": ann()})
    hold(a, "web")
    out = a.standby("all", 0)
    assert RequestResult("standby all", "web", True, "handing over to b") in out
    a.group_stopped("web", 0)
    peer(a, "b", ann(groups=[("web", CLAIM, 1)]))
    assert state(a, "web") == NONE  # the handoff to b outranks a's preference
    # on b: after taking it over, a (alive all along) is no failback event
    b = ready(local="b", peers={"a": ann(groups=[("web", NONE, 0, "b")])})
    assert state(b, "web") == CLAIM
    hold(b, "web")
    out = peer(b, "a", ann())
    assert not acts(out, ReleaseGroup)


def test_failback_when_preferred_node_restarts():
    b = ready(local="b", peers={"a": ann(groups=[("web", NONE, 0, "b")])})
    hold(b, "web")
    out = peer(b, "a", ann())
    assert not acts(out, ReleaseGroup)
    out = b.set_alive({"a"}, 10, {"a": ann(status=Status.STARTING)}, restarted=["a"])
    assert not acts(out, ReleaseGroup)
    out = peer(b, "a", ann(), now=20)
    assert acts(out, ReleaseGroup) == [ReleaseGroup("web", "auto_failback to preferred node a", drain=True)]


# --------------------------------------------------------------------------- split brain

def test_split_brain_keeper_reannounces_loser_releases():
    a = ready()  # alone: takes both
    a.group_started("web", 0)
    a.group_started("db", 0)
    out = peer(a, "b", ann(groups=[("web", HELD), ("db", HELD)]))  # the partition heals
    assert SplitBrain("web", ("a", "b"), "a") in out
    assert Reannounce("web") in out
    assert acts(out, ReleaseGroup) == [ReleaseGroup("db", "split brain: b keeps it")]
    # reported once, re-announced again when the loser has stopped
    out = peer(a, "b", ann(groups=[("web", STOPPING), ("db", HELD)]))
    assert not acts(out, SplitBrain) and not acts(out, Reannounce)
    out = peer(a, "b", ann(groups=[("db", HELD)]))
    assert acts(out, Reannounce) == [Reannounce("web")]


def test_split_brain_better_score_keeps_before_preference():
    a = ready()
    a.group_started("web", 0)
    out = peer(a, "b", ann(score=3, groups=[("web", HELD)]))
    assert acts(out, ReleaseGroup)[0].reason == "split brain: b keeps it"


# --------------------------------------------------------------------------- operator, failures, shutdown

def test_standby_selection_is_relative_to_this_node():
    groups = {"a1": "a", "a2": "a", "b1": "b"}
    a = ready(groups=groups, fb="off")  # "on" would give b1 back as soon as b shows up
    for g in groups:
        a.group_started(g, 0)
    peer(a, "b", ann())
    rel = lambda out: sorted(r.group for r in acts(out, ReleaseGroup))  # noqa: E731
    assert rel(a.standby("foreign", 0)) == ["b1"]
    assert rel(a.standby("local", 0)) == ["a1", "a2"]
    assert a.standby("all", 0)[0] == RequestResult("standby all", "", False,
                                                   "no selected group is held here")


def test_standby_failback_hands_to_the_preferred_node():
    a = ready(nodes=("a", "b", "c"), groups={"web": "a", "db": "c"})
    a.group_started("db", 0)
    peer(a, "b", ann())
    peer(a, "c", ann())
    a.standby("failback", 0)
    assert a.announcement().group("db").to == "c"


def test_standby_refused_without_a_peer():
    a = ready()
    a.group_started("web", 0)
    out = a.standby("local", 0)
    assert acts(out, RequestResult)[0].ok is False and not acts(out, ReleaseGroup)


def test_takeover_selection():
    b = ready(local="b", groups={"a1": "a", "b1": "b"}, settle=False)
    assert b._select("local", takeover=True) == ["b1"]
    assert b._select("failback", takeover=True) == ["b1"]
    assert b._select("foreign", takeover=True) == ["a1"]
    assert b._select("failback", takeover=False) == ["a1"]
    with pytest.raises(ValueError, match="expected one of"):
        b._select("some", takeover=True)


def test_failed_group_is_handed_over_and_not_claimed_again_until_takeover():
    a = ready(peers={"b": ann()})
    hold(a, "web")
    out = a.group_failed("web", 0, "vip: address in use")
    assert acts(out, ReleaseGroup) == [ReleaseGroup("web", "failed: vip: address in use")]
    a.group_stopped("web", 0)
    e = a.announcement().group("web")
    assert (e.failed, e.to) == (True, "b")
    peer(a, "b", ann(groups=[("web", STOPPING)]))  # say b could not either, and gives up
    peer(a, "b", ann(groups=[("web", NONE, 0, "", True)]))
    assert state(a, "web") == NONE  # both failed: it stays down
    a.takeover("local", 0)
    assert state(a, "web") == CLAIM


def test_shutdown_releases_and_completes():
    a = ready(peers={"b": ann()})
    hold(a, "web")
    out = a.shutdown(0)
    assert acts(out, ReleaseGroup) == [ReleaseGroup("web", "shutdown", drain=True)]
    assert a.announcement().status == Status.LEAVING and not a.leave_complete
    a.group_stopped("web", 0)
    assert a.leave_complete
    assert a.announcement().group("web").to == "b"
    peer(a, "b", ann(groups=[("db", CLAIM, 1)]))
    assert state(a, "db") == NONE and Grant("b", "db", 1) in a.announcement().grants


def test_impossible_driver_report_names_state_and_event():
    a = ready(peers={"b": ann()})
    with pytest.raises(TransitionError, match="group db.*'none'.*'started'"):
        a.group_started("db", 0)
    with pytest.raises(ValueError, match="unknown group 'nope'"):
        a.group_stopped("nope", 0)
    with pytest.raises(ValueError, match="preferred node 'z'"):
        Arbiter("a", ("a", "b"), {"g": "z"})


def test_a_request_being_served_does_not_expire_but_a_stalled_one_does():
    b = ready(local="b", request_timeout=1000, peers={"a": ann(groups=[("web", HELD)])})
    b.takeover("all", 0)
    peer(b, "a", ann(groups=[("web", STOPPING, 0, "b")]), now=500)  # a is handing it over
    assert acts(b.on_timer(1500), RequestResult) == []
    assert b.next_deadline() > 1500  # never a deadline in the past
    peer(b, "a", ann(groups=[("web", HELD)]), now=1600)  # a changed its mind (say, failback)
    out = b.on_timer(b.next_deadline())
    assert [r.ok for r in acts(out, RequestResult)] == [False]


def test_announce_now_only_when_the_announcement_changed():
    a = ready(peers={"b": ann()})
    a.on_timer(5)
    assert acts(a.on_timer(10), AnnounceNow) == []
    assert acts(a.set_score(1, 1, 20), AnnounceNow) == [AnnounceNow()]
    assert acts(a.set_score(1, 1, 30), AnnounceNow) == []
    out = peer(a, "b", ann(score=1, groups=[("db", CLAIM, 2)]))  # our grant is news
    assert acts(out, AnnounceNow) == [AnnounceNow()]


def test_heard_list_and_a_holder_that_cannot_hear_us():
    a = Arbiter("a", ("a", "b"), GROUPS, "on", deaf_after=1000)
    a.start(0)
    for g in GROUPS:
        a.group_stopped(g, 0)
    a.set_alive({"b"}, 0, {"b": ann(heard=("a",))})
    assert a.announcement().heard == ("b",)
    a.settle(0)
    hold(a, "web")
    # b stops hearing a (a firewall), declares it dead and starts web itself
    out = peer(a, "b", ann(groups=[("web", HELD)], heard=()), now=500)
    assert acts(out, ReleaseGroup) == []  # not yet deaf_after: the keeper rule holds (a keeps)
    # the omission counts from the first announcement that left us out (500), not from when b
    # became alive (0): one stale announcement of a peer that wrongly declared us dead is no proof
    assert acts(a.on_timer(1000), NotHeardBy) == []
    out = a.on_timer(1500)
    assert acts(out, NotHeardBy) == [NotHeardBy("b", 1000)]
    assert acts(out, ReleaseGroup) == [ReleaseGroup("web", "split brain: b runs it and cannot hear us")]
    assert acts(a.on_timer(1600), NotHeardBy) == []  # once per episode
    # after our own stall, b not hearing us is no evidence for another deaf_after
    a.stalled(2000)
    assert "b" not in a._deaf


def test_a_start_cancelled_by_its_release_is_no_failure_of_this_node():
    """A start that fails because the group was released meanwhile (here: a split brain while
    starting, the peer keeps it) leaves no failure mark: the node stays a candidate."""
    a = ready()  # alone: starts both groups
    out = peer(a, "b", ann(groups=[("db", STARTING)]))
    assert acts(out, ReleaseGroup) == [ReleaseGroup("db", "split brain: b keeps it")]
    assert state(a, "db") == STOPPING
    out = a.group_failed("db", 0, "vip: cancelled")
    assert out == [StartCancelled("db", "vip: cancelled")]
    assert state(a, "db") == STOPPING and a.local_groups["db"].failed is False
    a.group_stopped("db", 0)
    assert a.announcement().group("db").failed is False
    # b dies: a takes db again (with a failure mark it would stay down until a takeover)
    out = a.set_alive(set(), 100, {})
    assert state(a, "db") == STARTING and AcquireGroup("db") in out


def test_a_failed_start_that_was_not_released_marks_the_failure():
    a = ready()
    out = a.group_failed("db", 0, "vip: address in use")
    assert acts(out, ReleaseGroup) == [ReleaseGroup("db", "failed: vip: address in use")]
    assert not acts(out, StartCancelled) and a.local_groups["db"].failed is True


def test_an_omission_that_ends_is_forgotten():
    a = Arbiter("a", ("a", "b"), GROUPS, "on", deaf_after=1000)
    a.start(0)
    for g in GROUPS:
        a.group_stopped(g, 0)
    a.set_alive({"b"}, 0, {"b": ann(heard=("a",))})
    a.settle(0)
    hold(a, "web")
    peer(a, "b", ann(groups=[("web", HELD)], heard=()), now=2000)  # b wrongly declared a dead
    peer(a, "b", ann(groups=[("web", HELD)], heard=("a",)), now=2100)  # and hears it again
    peer(a, "b", ann(groups=[("web", HELD)], heard=()), now=2900)
    out = a.on_timer(3500)  # 600 ms into the second omission: not deaf; a keeps (preferred)
    assert acts(out, NotHeardBy) == [] and acts(out, ReleaseGroup) == []


def test_a_node_that_stalled_yields_in_a_split_brain_and_says_so():
    from hadirector.cluster.messages import GroupEntry as GE
    a = ready(peers={"b": ann(heard=("a",))}, deaf_after=500)
    hold(a, "web")
    a.stalled(1000)  # a was not running; b took web meanwhile
    assert a.announcement().group("web").yields
    out = peer(a, "b", ann(groups=[("web", HELD)], heard=("a",)), now=1001)
    assert acts(out, ReleaseGroup) == [ReleaseGroup("web", "split brain: this node stalled; b kept it running")]
    # seen from b (the preferred node would normally keep it): a yields, b keeps and re-announces
    b = ready(local="b", deaf_after=500)  # alone: a was declared dead, b took everything
    for g in GROUPS:
        b.group_started(g, 5)
    out = peer(b, "a", ann(groups=[GE("web", HELD, yields=True)], heard=("b",)), now=10)
    assert acts(out, ReleaseGroup) == [] and acts(out, Reannounce) == [Reannounce("web")]
    # the yield ends after stall_yield (2 x deaf_after by default)
    assert a.next_deadline() == 2000
    a.on_timer(2000)
    assert not a._yielding


# --------------------------------------------------------------------------- draining (planned releases)

from hadirector.cluster.actions import Lease  # noqa: E402
from hadirector.cluster.guard import GuardTiming  # noqa: E402

TIMING = GuardTiming(lease=300, renew=100, probe=25, slow_probe=100)  # keepalive 100 / deadtime 500


def vip_arbiter(drain=500, **kw):
    a = ready(peers={"b": ann()}, addresses={"web": ["198.18.0.100"]}, guard_timing=TIMING,
              drain={"web": drain}, **kw)
    hold(a, "web")
    return a


def leases(out):
    return [x.until for x in acts(out, Lease)]


def released(out):
    (r,) = acts(out, ReleaseGroup)
    return r


@pytest.mark.parametrize("how", ["standby", "takeover", "failback", "shutdown"])
def test_a_planned_release_drains(how):
    a = ready(peers={"b": ann()}, fb="on")
    hold(a, "web")  # preferred: a
    if how == "standby":
        out = a.standby("all", 10)
    elif how == "takeover":
        out = peer(a, "b", ann(requests=["web"]), 10)
    elif how == "failback":  # b holds web, its preferred node a comes back
        a = ready(local="b", peers={"a": ann(groups=[("web", NONE, 0, "b")])})
        hold(a, "web")
        peer(a, "a", ann())
        a.set_alive({"a"}, 10, {"a": ann(status=Status.STARTING)}, restarted=["a"])
        out = peer(a, "a", ann(), now=20)
    else:
        out = a.shutdown(10)
    r = released(out)
    assert r.drain is True, r
    assert "drain" in describe(r, "a").text


@pytest.mark.parametrize("how", ["split brain", "failed", "quorum", "better score", "conflict"])
def test_a_release_where_someone_else_may_answer_does_not_drain(how):
    a = vip_arbiter()
    if how == "split brain":
        out = peer(a, "b", ann(groups=[("web", HELD)], score=0), 10)
        out = peer(a, "b", ann(groups=[("web", HELD)], score=1), 20)  # b keeps it (better score)
    elif how == "failed":
        out = a.group_failed("web", 10, "vip: gone")
    elif how == "quorum":
        out = a.set_quorum("stop", 10, "1 of 3 votes")
    elif how == "better score":
        out = peer(a, "b", ann(score=5), 10)
    else:  # alone with db (preferred: b); a silent b answers for its address: b keeps it
        a = ready(addresses={"db": ["198.18.0.100"]}, guard_timing=TIMING, drain={"db": 500})
        a.group_started("db", 0)
        a.unaccounted = {"b"}
        out = a.address_seen("198.18.0.100", "claim", "02:00:00:00:00:0b", "02:00:00:00:00:0a",
                             "eth0", 10)
    r = released(out)
    assert r.drain is False, r
    assert "drain" not in describe(r, "a").text
    # and the lease is let run out at once: nothing renews it any more
    assert all(not leases(a.on_timer(t)) for t in range(10, 1000, 50))


def test_the_lease_is_renewed_while_draining_and_only_for_the_drain_time():
    a = vip_arbiter(drain=500)
    out = a.on_timer(1000)
    assert leases(out) == [1300]
    out = a.standby("all", 1050)
    assert released(out).drain is True and state(a, "web") == STOPPING
    renewed = {}
    t = 1050
    while t < 3000:
        nxt = a.next_deadline()
        assert nxt is None or nxt > t - 1 or nxt == t  # never a deadline in the past
        t = t + 10 if nxt is None else max(nxt, t + 1)
        for until in leases(a.on_timer(t)):
            renewed[t] = until
    # renewed every 100 ms while the drain lasts (to 1550), covering it, then never again
    assert sorted(renewed) == [1100, 1200, 1300, 1400, 1500]
    assert max(renewed.values()) >= 1550 + TIMING.renew
    assert a.snapshot()["groups"]["web"]["lease_until"] is None
    a.group_stopped("web", 3000)
    assert not leases(a.on_timer(3100))


def test_draining_stops_renewing_when_stopped_or_a_peer_runs_the_group():
    a = vip_arbiter(drain=5000)
    a.standby("all", 1000)
    assert leases(a.on_timer(1100))
    a.group_stopped("web", 1150)
    assert not leases(a.on_timer(1200)) and a.next_deadline() is None
    # drain of a second release: a peer announcing it running ends the renewals
    b = vip_arbiter(drain=5000)
    b.standby("all", 1000)
    assert leases(b.on_timer(1100))
    peer(b, "b", ann(groups=[("web", STARTING)]), 1150)
    assert not any(leases(b.on_timer(t)) for t in range(1200, 2000, 100))


def test_without_a_drain_time_a_planned_release_renews_nothing():
    a = vip_arbiter(drain=0)
    out = a.standby("all", 1000)
    assert released(out).drain is True  # the release is orderly; there is just nothing to wait for
    assert not any(leases(a.on_timer(t)) for t in range(1100, 2000, 100))


def test_drain_times_come_from_the_vips_of_model_groups():
    from hadirector.cluster.arbiter import group_drains
    from hadirector.config.model import Group, ScriptResource, VipResource
    g = Group(name="web", preferred_node="a",
              resources=(VipResource(address="198.18.0.100"), VipResource(address="198.18.0.101", drain="800ms"),
                         ScriptResource(name="httpd")))
    h = Group(name="db", preferred_node="b", resources=(ScriptResource(name="pg"),))
    assert group_drains([g, h]) == {"web": 800, "db": 0}
    assert Arbiter("a", ("a", "b"), [g, h]).drain == {"web": 800}
