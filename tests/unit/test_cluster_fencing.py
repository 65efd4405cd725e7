"""Fencing before takeover (cluster/fencing.py): the pure Fencer with a hand-advanced clock, and
whole nodes in the simulator (cluster/sim.py): a frozen holder is fenced before its group is
taken; a failing fence blocks the takeover and is retried with a growing pause; of two nodes
that lose each other only one fences (the delay); a peer that leaves cleanly is not fenced."""

from hadirector.cluster.actions import AcquireGroup, Fence, FenceResult
from hadirector.cluster.fencing import FAILED, FENCED, OK, RUNNING, WAITING, Fencer
from hadirector.cluster.sim import Sim, cluster_config

NODES = ("alpha", "beta")


def test_fence_is_due_at_once_when_the_target_ranks_below_us():
    f = Fencer("alpha", NODES, delay=5000)
    f.heard({"beta"}, {"alpha": 1, "beta": 0})
    assert not f.delayed("beta")
    assert f.want({"beta"}, 100) == [Fence("beta", 1, 0)]
    assert f.targets["beta"].state == RUNNING and not f.clear({"beta"})
    assert f.want({"beta"}, 150) == []  # running: not asked twice
    assert f.result("beta", True, 400, device="ipmi") == [FenceResult("beta", True, "", "ipmi", 0, None)]
    assert f.clear({"beta"}) and f.targets["beta"].state == FENCED
    f.heard({"beta"}, {})  # heard again: nothing to do until it goes silent again
    assert f.targets["beta"].state == OK and not f.clear({"beta"})


def test_the_delay_goes_to_the_fence_of_the_node_that_ranks_above():
    # beta held the group when last heard: alpha's fence of it waits; beta's of alpha does not
    a = Fencer("alpha", NODES, delay=5000)
    b = Fencer("beta", NODES, delay=5000)
    for f in (a, b):
        f.heard({"alpha", "beta"}, {"alpha": 0, "beta": 1})
    assert a.delayed("beta") and not b.delayed("alpha")
    assert a.want({"beta"}, 1000) == [] and a.targets["beta"].state == WAITING
    assert a.next_deadline() == 6000
    assert a.want({"beta"}, 5999) == []
    assert a.want({"beta"}, 6000) == [Fence("beta", 1, 5000)]
    assert b.want({"alpha"}, 1000) == [Fence("alpha", 1, 0)]
    # equal counts: the node listed first ranks above (pcmk_delay_base's static order)
    c = Fencer("beta", NODES, delay=5000)
    c.heard({"alpha", "beta"}, {"alpha": 1, "beta": 1})
    assert c.delayed("alpha") and not Fencer("alpha", NODES, delay=5000).delayed("beta")


def test_a_failed_fence_is_retried_with_a_growing_pause():
    f = Fencer("alpha", NODES, delay=0, retry_first=2000, retry_max=5000)
    assert f.want({"beta"}, 0) == [Fence("beta", 1, 0)]
    assert f.result("beta", False, 100, "exit 1: connection refused", "ipmi") == [
        FenceResult("beta", False, "exit 1: connection refused", "ipmi", 1, 2000)]
    assert f.targets["beta"].state == FAILED and f.next_deadline() == 2100
    assert f.want({"beta"}, 2099) == []
    assert f.want({"beta"}, 2100) == [Fence("beta", 2, 0)]
    assert f.result("beta", False, 2200, "x")[0].retry_ms == 4000
    assert f.want({"beta"}, 6200) == [Fence("beta", 3, 0)]
    assert f.result("beta", False, 6300, "x")[0].retry_ms == 5000  # capped
    assert [h["ok"] for h in f.history] == [False, False, False]
    snap = f.snapshot(6400)
    assert snap["peers"]["beta"]["state"] == "failed" and snap["peers"]["beta"]["failed_attempts"] == 3
    assert snap["peers"]["beta"]["next_attempt_in_ms"] == 4900
    # nobody wants the takeover any more: no timer for it (no busy loop)
    assert f.want(set(), 6500) == [] and f.next_deadline() is None


def test_targets_without_a_device_are_not_fenced():
    f = Fencer("alpha", ("alpha", "beta", "gamma"), delay=0, targets=["beta"])
    assert f.want({"beta", "gamma"}, 0) == [Fence("beta", 1, 0)]
    f.result("beta", True, 10)
    assert f.clear({"beta", "gamma"})  # gamma: taken over unfenced (no device; check says so)


# --------------------------------------------------------------------------- whole nodes

def _sim(**kw):
    s = Sim(cluster_config(groups={"web": "alpha"}, auto_failback="off", fencing=kw.pop("delay", 0), **kw), seed=5)
    s.run(2000)
    assert s.owner("web") == "alpha"
    return s


def test_a_frozen_holder_is_fenced_before_the_takeover():
    s = _sim()
    s.freeze("alpha")
    t0 = s.now
    s.run(3000)
    fences = s.events("beta", Fence)
    assert [a.node for _, a in fences] == ["alpha"]
    acquired = [t for t, a in s.events("beta", AcquireGroup) if a.group == "web"]
    assert acquired and acquired[0] >= fences[0][0] + s.fence_time  # only after the fence succeeded
    assert s.fenced and s.fenced[0][2] == "alpha" and s.owner("web") == "beta"
    assert s.violations == [] and not s.nodes["alpha"].running  # the fence powered it off
    assert acquired[0] - t0 < 500 + 500  # deadtime + fence time + a little


def test_a_failing_fence_blocks_the_takeover_and_is_retried():
    s = _sim()
    s.fence_fails.add("alpha")
    s.kill("alpha")  # daemon gone, resources up: the case fencing is for
    s.run(8000)
    results = s.events("beta", FenceResult)
    assert len(results) >= 3 and not any(r.ok for _, r in results)
    gaps = [b[0] - a[0] for a, b in zip(results, results[1:])]
    assert gaps[0] >= 2000 + s.fence_time and gaps[1] >= 4000 + s.fence_time, gaps
    assert s.events("beta", AcquireGroup) == []  # never taken while the fence fails
    assert s.nodes["beta"].core.status(s.now)["fencing"]["peers"]["alpha"]["state"] in ("failed", "running")
    s.fence_fails.clear()
    s.run(20_000)
    assert s.owner("web") == "beta" and s.violations == []


def test_two_nodes_cut_apart_only_one_fences():
    # each holds a group; the cut makes each want the other's: only alpha (listed first, same
    # count) is protected by the delay, so beta's fence waits and alpha's wins
    s = Sim(cluster_config(fencing=2000), seed=9)
    s.run(2000)
    assert (s.owner("g-alpha"), s.owner("g-beta")) == ("alpha", "beta")
    s.partition(("alpha",), ("beta",))
    s.run(5000)
    assert [(f, t) for _, f, t in s.fenced] == [("alpha", "beta")]
    assert s.nodes["alpha"].up and not s.nodes["beta"].running
    assert s.owner("g-beta") == "alpha" and s.owner("g-alpha") == "alpha"


def test_a_clean_leave_is_not_fenced():
    s = _sim()
    s.call("alpha", "shutdown")
    s.run(3000)
    assert s.events("beta", Fence) == [] and s.owner("web") == "beta"


def test_lossy_links_freeze_and_thaw_never_run_a_group_twice():
    # lossy, duplicating, replaying links; the holder freezes for 3 s: fenced (powered off) or,
    # when the fence fails, the takeover waits; never two runners, whichever happens
    from hadirector.cluster.sim import LinkModel
    for seed in range(4):
        s = Sim(cluster_config(groups={"web": "alpha"}, auto_failback="off", fencing=300), seed=seed,
                link=LinkModel(loss=0.05, delay=(1, 20), dup=0.05, replay=0.05))
        s.run(2000)
        if seed % 2:
            s.fence_fails.add("alpha")
        s.freeze("alpha")
        s.run(3000)
        s.thaw("alpha")
        s.run(5000)
        assert s.violations == [], (seed, s.violations)
        if seed % 2:
            assert s.events("beta", AcquireGroup) == [] and s.owner("web") == "alpha", seed
        else:
            assert s.fenced and s.owner("web") == "beta", seed
