"""Quorum (cluster/quorum.py) in the simulator (cluster/sim.py): three node cores on lossy links
with VIP groups on a simulated public LAN, a hand-advanced clock, and the no_quorum_policy
choices; two nodes with a witness vote fed by hand (NodeCore.on_witness).

Timing as in test_pair_vip.py: keepalive 100 ms, warntime 300 ms, deadtime 500 ms, initdead
1000 ms; the VIP lease is 300 ms, renewed every 100 ms. Every test checks what a client sees
(`answer_violations`: two kernels answering for one address) besides who runs what.
"""

import random

import pytest

from hadirector.cluster.actions import (AcquireGroup, HeldElsewhere, QuorumChanged, ReleaseGroup,
                                        RequestResult)
from hadirector.cluster.sim import LinkModel, Sim, cluster_config

NODES = ("alpha", "beta", "gamma")
HOME = {"g-alpha": "alpha", "g-beta": "beta", "g-gamma": "gamma"}
LOSSY = LinkModel(loss=0.05, delay=(1, 20), dup=0.05, replay=0.05)
DEADTIME = 500


def sim(seed=3, quorum=None, nodes=NODES, run=2500, start=True, **cfg):
    cfg.setdefault("vips", True)
    s = Sim(cluster_config(nodes=nodes, quorum=quorum, **cfg), seed=seed, link=LOSSY, stagger=150,
            start=start)
    s.run(run)
    return s


def owners(s):
    return {g.name: s.owner(g.name) for g in s.config.groups}


def acquired(s, node, group, t0=0):
    return [t for t, a in s.events(node, AcquireGroup) if a.group == group and t >= t0]


def released(s, node, group, t0=0):
    return [(t, a.reason) for t, a in s.events(node, ReleaseGroup) if a.group == group and t >= t0]


def quorum_of(s, node):
    return s.nodes[node].core.status(s.now)["quorum"]


def test_three_nodes_are_quorate_and_start_at_home():
    s = sim()
    assert owners(s) == HOME
    for n in NODES:
        assert quorum_of(s, n) | {"since_age_ms": 0} == {
            "quorate": True, "votes": 3, "expected": 3, "needed": 2, "witness": "none",
            "policy": "stop", "mode": "ok", "two_node": False, "wait_for_all": False,
            "waiting_for_all": False, "members": list(NODES), "since_age_ms": 0}
    assert s.violations == [] and s.answer_violations == []


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_isolated_holder_stops_and_the_majority_takes_over(seed):
    """alpha's heartbeats to and from beta and gamma are cut; the public LAN still joins them
    all (a client sees every director). alpha loses quorum and stops everything it runs; the
    majority takes g-alpha once alpha's VIP fell silent on the wire, so no two ever answer."""
    s = sim(seed=seed)
    t0 = s.now
    s.partition(("alpha",), ("beta", "gamma"), lan=False)
    s.run(3000)
    assert owners(s) == {"g-alpha": "beta", "g-beta": "beta", "g-gamma": "gamma"}
    assert s.running("g-alpha") == ["beta"]
    assert not quorum_of(s, "alpha")["quorate"] and quorum_of(s, "beta")["quorate"]
    (t_stop, why), = released(s, "alpha", "g-alpha", t0)
    assert why.startswith("no quorum: 1 of 3 votes, 2 needed")
    (t_take,) = acquired(s, "beta", "g-alpha", t0)
    assert t_stop < t_take < t0 + DEADTIME + 600  # the takeover waits only for the stop and the probes
    assert acquired(s, "alpha", "g-beta", t0) == [] and acquired(s, "alpha", "g-gamma", t0) == []
    assert s.violations == [] and s.answer_violations == []
    lost = [a for t, a in s.events("alpha", QuorumChanged) if t > t0 and not a.quorate]
    assert lost and lost[0].mode == "stop" and lost[0].members == ("alpha",)


def test_without_quorum_the_isolated_holder_keeps_the_vip_and_nobody_takes_over():
    """The same cut with no_quorum_policy ignore (heartbeat's behaviour): alpha keeps answering
    and the majority, seeing its VIP answered, never takes it (and says so)."""
    s = sim(quorum={"no_quorum_policy": "ignore"})
    t0 = s.now
    s.partition(("alpha",), ("beta", "gamma"), lan=False)
    s.run(3000)
    assert s.running("g-alpha") == ["alpha"]
    assert acquired(s, "beta", "g-alpha", t0) == [] and acquired(s, "gamma", "g-alpha", t0) == []
    assert any(a.group == "g-alpha" for _, a in s.events("beta", HeldElsewhere))
    assert not quorum_of(s, "alpha")["quorate"] and quorum_of(s, "alpha")["mode"] == "ok"
    assert s.answer_violations == []


def test_partition_one_two_then_heal_converges_home():
    s = sim()
    t0 = s.now
    s.partition(("alpha",), ("beta", "gamma"), lan=False)
    s.run(3000)
    s.heal()
    t1 = s.now
    s.run(3000)
    assert owners(s) == HOME  # auto_failback on: alpha's group goes home, release before acquire
    assert all(quorum_of(s, n)["quorate"] for n in NODES)
    assert acquired(s, "alpha", "g-alpha", t1)
    assert s.violations == [] and s.answer_violations == []
    assert acquired(s, "alpha", "g-alpha", t0) == acquired(s, "alpha", "g-alpha", t1)


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_partition_two_one_with_the_lan_cut_too(seed):
    """gamma is cut off on every path, the public LAN included: its probes and ours do not
    cross, so probing cannot keep two from answering. The leases do: gamma renews them only
    while it hears a majority (quorum.py renew_until), so its kernel falls silent before the
    majority declares it dead. Its resources may still be stopping when the majority starts
    (`violations`: fencing closes that), but no client sees two answers."""
    s = sim(seed=seed, auto_failback="off")
    t0 = s.now
    s.partition(("alpha", "beta"), ("gamma",))
    s.run(3000)
    assert s.running("g-gamma") == ["alpha"] and owners(s)["g-gamma"] == "alpha"
    assert not quorum_of(s, "gamma")["quorate"]
    assert s.answer_violations == []
    lease_end = s.nodes["gamma"].lease["g-gamma"]
    (t_take,) = acquired(s, "alpha", "g-gamma", t0)
    assert lease_end < t_take  # gamma's kernel was silent before alpha started
    s.heal()
    s.heal_lan()
    s.run(3000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta", "g-gamma": "alpha"}


def test_freeze_keeps_what_runs_and_starts_nothing():
    s = sim(quorum={"no_quorum_policy": "freeze"})
    t0 = s.now
    s.partition(("alpha",), ("beta", "gamma"), lan=False)
    s.run(3000)
    assert s.running("g-alpha") == ["alpha"]  # kept
    assert released(s, "alpha", "g-alpha", t0) == []
    assert acquired(s, "alpha", "g-beta", t0) == [] and acquired(s, "alpha", "g-gamma", t0) == []
    assert quorum_of(s, "alpha")["mode"] == "freeze"
    # its VIP still answers on the shared LAN: the majority does not take it
    assert acquired(s, "beta", "g-alpha", t0) == [] and s.answer_violations == []
    # a group that fails on the frozen side is not restarted there either
    s.call("alpha", "group_failed", "g-alpha", detail="test")
    s.run(2000)
    assert acquired(s, "alpha", "g-alpha", t0) == []
    assert s.running("g-alpha") == ["beta"]  # its VIP fell silent, so the majority took it
    assert s.answer_violations == []


def test_freeze_majority_still_starts_groups():
    """freeze restrains only the side without quorum: the majority starts a dead node's group."""
    s = sim(quorum={"no_quorum_policy": "freeze"})
    s.crash("gamma")
    s.run(2000)
    assert owners(s)["g-gamma"] == "alpha" or owners(s)["g-gamma"] == "beta"


def test_wait_for_all_holds_everything_until_every_node_was_seen():
    s = sim(quorum={"wait_for_all": True}, start=False)
    s.boot("alpha", 1)
    s.boot("beta", 1)
    s.run(3000)  # a majority is up and settled, but gamma was never seen
    assert owners(s) == {"g-alpha": None, "g-beta": None, "g-gamma": None}
    assert quorum_of(s, "alpha")["waiting_for_all"] and not quorum_of(s, "alpha")["quorate"]
    t1 = s.now
    s.boot("gamma", 1)
    s.run(2000)
    assert owners(s) == HOME
    assert min(acquired(s, "alpha", "g-alpha")) >= t1
    s.crash("gamma")  # all were seen once: the majority is enough now
    s.run(2000)
    assert owners(s)["g-gamma"] in ("alpha", "beta")
    assert s.violations == [] and s.answer_violations == []


def test_without_wait_for_all_a_majority_starts_alone():
    s = sim(start=False)
    s.boot("alpha", 1)
    s.boot("beta", 1)
    s.run(3000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta", "g-gamma": "alpha"}


def test_a_lone_node_at_start_takes_nothing():
    s = sim(start=False)
    s.boot("alpha", 1)
    s.run(3000)
    assert owners(s) == {"g-alpha": None, "g-beta": None, "g-gamma": None}
    assert quorum_of(s, "alpha")["votes"] == 1


def test_two_nodes_keep_heartbeats_behaviour():
    s = sim(nodes=("alpha", "beta"))
    s.crash("beta")
    s.run(2000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "alpha"}
    assert quorum_of(s, "alpha") | {"since_age_ms": 0} == {
        "quorate": True, "votes": 1, "expected": 2, "needed": 1, "witness": "none",
        "policy": "stop", "mode": "ok", "two_node": True, "wait_for_all": False,
        "waiting_for_all": False, "members": ["alpha"], "since_age_ms": 0}


def test_two_nodes_wait_for_all_at_start():
    s = sim(nodes=("alpha", "beta"), quorum={"wait_for_all": True}, start=False)
    s.boot("alpha", 1)
    s.run(3000)
    assert owners(s) == {"g-alpha": None, "g-beta": None}
    s.boot("beta", 1)
    s.run(2000)
    s.crash("beta")
    s.run(2000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "alpha"}  # two_node: one vote suffices now


WITNESS = {"device": {"host": "198.18.0.9", "tls": False}}


def test_witness_decides_a_two_node_split():
    """Two nodes and a witness: the heartbeat links and the LAN between the nodes are cut, both
    still reach qnetd, which (ffsplit) gives its vote to beta only. alpha stops, beta takes
    over; then the witness alone is lost: nothing moves."""
    s = sim(nodes=("alpha", "beta"), quorum=WITNESS)
    for n in ("alpha", "beta"):
        s.call(n, "on_witness", None)  # the client has not heard qnetd yet
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}  # 2 of 3 votes without it
    assert quorum_of(s, "alpha")["expected"] == 3 and quorum_of(s, "alpha")["witness"] == "unknown"
    for n in ("alpha", "beta"):
        s.call(n, "on_witness", True)
    s.run(500)
    t0 = s.now
    s.partition(("alpha",), ("beta",))
    s.run(DEADTIME + 50)  # each side declares the other dead and waits for the witness
    for n in ("alpha", "beta"):
        assert quorum_of(s, n)["witness"] == "waiting" and quorum_of(s, n)["mode"] == "freeze"
    assert acquired(s, "beta", "g-alpha", t0) == [] and released(s, "alpha", "g-alpha", t0) == []
    s.call("alpha", "on_witness", False, members=("alpha",))  # ffsplit: one side only
    s.call("beta", "on_witness", True, members=("beta",))
    s.run(2500)
    assert owners(s) == {"g-alpha": "beta", "g-beta": "beta"}
    assert s.running("g-alpha") == ["beta"]
    assert quorum_of(s, "beta") | {"since_age_ms": 0, "members": []} == {
        "quorate": True, "votes": 2, "expected": 3, "needed": 2, "witness": "vote",
        "policy": "stop", "mode": "ok", "two_node": False, "wait_for_all": False,
        "waiting_for_all": False, "members": [], "since_age_ms": 0}
    assert acquired(s, "alpha", "g-beta", t0) == []
    s.heal()
    s.heal_lan()
    s.run(3000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}  # back home (auto_failback on)
    t1 = s.now
    for n in ("alpha", "beta"):
        s.call(n, "on_witness", None)  # qnetd stopped
    s.run(3000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert all(released(s, n, g, t1) == [] for n in ("alpha", "beta") for g in ("g-alpha", "g-beta"))


def test_witness_lost_with_the_peer_stops_the_survivor():
    s = sim(nodes=("alpha", "beta"), quorum=WITNESS)
    s.crash("beta")
    s.run(2000)
    assert owners(s)["g-beta"] is None and s.running("g-alpha") == []  # 1 of 3 votes
    s.call("alpha", "on_witness", True)
    s.run(1000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "alpha"}


@pytest.mark.parametrize("seed", range(4))
def test_random_partitions_never_two_holders(seed):
    """Random 1|2 and 1|1|1 partitions of the heartbeat links (the LAN shared), crashes and
    restarts, on lossy links, with the default quorum: at no moment do two nodes run a group or
    two kernels answer for a VIP; afterwards every group has one owner."""
    rng = random.Random(seed)
    s = Sim(cluster_config(nodes=NODES, vips=True, auto_failback=rng.choice(["on", "off"])),
            seed=seed, link=LinkModel(loss=0.1, dup=0.05, replay=0.05, delay=(1, 30)), stagger=100)
    s.run(2500)
    for _ in range(12):
        op = rng.choice(["one", "split3", "crash", "nothing"])
        n = rng.choice(NODES)
        if op == "one":
            s.partition((n,), tuple(x for x in NODES if x != n), lan=False)
        elif op == "split3":
            s.partition(*[(x,) for x in NODES], lan=False)
        elif op == "crash" and s.nodes[n].up:
            s.crash(n)
        s.run(rng.randint(300, 2500))
        s.heal()
        for x in NODES:
            if not s.nodes[x].up:
                s.restart(x)
        s.run(rng.randint(100, 1500))
    s.run(5000)
    assert s.violations == [] and s.answer_violations == []
    assert all(len(s.running(g)) == 1 and s.owner(g) for g in HOME)


def test_witness_sync_times_out_and_stale_reports_are_ignored():
    s = sim(nodes=("alpha", "beta"), quorum={"device": {"host": "q", "sync_timeout": "2s"}})
    s.call("alpha", "on_witness", True)
    s.call("beta", "on_witness", True)
    s.run(500)
    t0 = s.now
    s.crash("beta")
    s.run(DEADTIME + 100)
    assert quorum_of(s, "alpha")["witness"] == "waiting"
    s.call("alpha", "on_witness", True, members=("alpha", "beta"))  # for the old membership
    assert quorum_of(s, "alpha")["witness"] == "waiting"
    assert s.running("g-alpha") == ["alpha"] and s.running("g-beta") == []  # frozen meanwhile
    s.run(2000)  # no report for the new members: the vote counts as lost, 1 of 3 votes
    assert quorum_of(s, "alpha")["witness"] == "unknown" and not quorum_of(s, "alpha")["quorate"]
    assert s.running("g-alpha") == [] and released(s, "alpha", "g-alpha", t0)
    s.call("alpha", "on_witness", True, members=("alpha",))
    s.run(1500)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "alpha"}


def test_witness_vote_that_cannot_matter_is_not_waited_for():
    """Both nodes up: 2 of 3 votes are a majority whatever the witness says, so a membership
    change towards both nodes (beta back) needs no sync, and losing qnetd moves nothing."""
    s = sim(nodes=("alpha", "beta"), quorum=WITNESS, start=False)
    s.boot("alpha", 1)
    s.run(1500)
    s.call("alpha", "on_witness", True)
    s.run(1500)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "alpha"}
    s.boot("beta", 1)
    s.run(100)
    assert quorum_of(s, "alpha")["witness"] == "vote"  # no sync: the vote cannot matter now
    s.run(3000)
    assert owners(s) == {"g-alpha": "alpha", "g-beta": "beta"}
    assert s.violations == [] and s.answer_violations == []


def test_takeover_without_quorum_is_refused():
    s = sim()
    s.partition(("alpha",), ("beta", "gamma"), lan=False)
    s.run(2000)
    out = s.call("alpha", "takeover", "all")
    assert [a for a in out if isinstance(a, RequestResult)] == [RequestResult(
        "takeover all", "", False, "this node has no quorum: 1 of 3 votes, 2 needed")]
