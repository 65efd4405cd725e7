"""OwnerChanged (cluster/ownership.py) through two simulated node cores: the lines a failover,
a failback and a standby log on each node, with the reason of the move (issue 13 item 2)."""

from hadirector.cluster.actions import OwnerChanged
from hadirector.cluster.eventlog import NOTICE, WARNING, describe
from hadirector.cluster.sim import LinkModel, Sim, cluster_config

LOSSLESS = LinkModel()


def _changes(s, node, group, t0=0):
    return [(a.old, a.new, a.reason) for t, a in s.events(node, OwnerChanged) if a.group == group and t >= t0]


def test_start_then_failover_then_failback_say_who_and_why():
    s = Sim(cluster_config(groups={"web": "alpha"}), seed=2, link=LOSSLESS)
    s.run(2500)
    for node in ("alpha", "beta"):
        assert _changes(s, node, "web") == [(None, "alpha", "start")], node
    t0 = s.now
    s.crash("alpha")
    s.run(2000)
    # beta needs nobody's grant once alpha is dead: the owner changes in one step
    assert _changes(s, "beta", "web", t0) == [("alpha", "beta", "node alpha dead")]
    t1 = s.now
    s.restart("alpha")
    s.run(4000)
    assert s.owner("web") == "alpha"
    got = _changes(s, "beta", "web", t1)
    assert got[0][:2] == ("beta", None) and got[0][2] == "auto_failback to preferred node alpha", got
    assert got[-1][:2] == ("beta", "alpha") and got[-1][2] == got[0][2], got


def test_standby_names_the_release_and_the_peer_sees_it():
    s = Sim(cluster_config(groups={"web": "alpha"}, auto_failback="off"), seed=4, link=LOSSLESS)
    s.run(2500)
    t0 = s.now
    s.call("alpha", "standby", "all")
    s.run(2000)
    assert s.owner("web") == "beta"
    a, b = _changes(s, "alpha", "web", t0), _changes(s, "beta", "web", t0)
    assert a[0][:2] == ("alpha", None) and "standby" in a[0][2], a
    assert a[-1][:2] == ("alpha", "beta"), a
    assert b[0][:2] == ("alpha", None) and b[0][2] == "released by alpha to beta", b
    assert b[-1] == ("alpha", "beta", "released by alpha to beta"), b


def test_the_log_lines_and_levels():
    lost = describe(OwnerChanged("web", "alpha", None, "node alpha dead"), "beta")
    gained = describe(OwnerChanged("web", "alpha", "beta", "node alpha dead"), "beta")
    assert (lost.level, lost.text) == (WARNING, "group web: owner alpha -> none (node alpha dead)")
    assert (gained.level, gained.text) == (NOTICE, "group web: owner alpha -> beta (node alpha dead)")
    assert gained.event == "owner-changed"
    assert gained.fields == {"EVENT": "owner-changed", "GROUP": "web"}
