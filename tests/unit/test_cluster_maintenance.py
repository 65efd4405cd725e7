"""The maintenance map (cluster/maintenance.py) and its replication through the cluster messages:
a mark set on one node reaches the others, marks set on both sides of a partition are all kept,
the greater (counter, origin) wins a conflict everywhere, a restarted node keeps its map, and an
old or replayed mark changes nothing (issue 13 item 6)."""

from hadirector.cluster.actions import MaintenanceChanged
from hadirector.cluster.maintenance import MaintenanceMap
from hadirector.cluster.messages import Mark, decode
from hadirector.cluster.sim import LinkModel, Sim, cluster_config

LOSSY = LinkModel(loss=0.1, delay=(1, 20), dup=0.05, replay=0.05)
V = "TCP 198.18.0.1:80"


def _active(s, node):
    return {k: (m.state, m.by) for k, m in s.nodes[node].core.maintenance.active().items()}


def test_merge_is_last_writer_wins_by_counter_then_origin():
    a = MaintenanceMap()
    m1 = a.set(V, "198.18.1.4:80", "drain", "alpha", "root@alpha", 100)
    b = MaintenanceMap()
    assert b.merge([m1]) == [m1] and b.merge([m1]) == []  # idempotent
    m2 = b.set(V, "198.18.1.4:80", "enabled", "beta")
    assert m2.counter == m1.counter + 1  # Lamport: above what beta had seen
    assert a.merge([m2]) == [m2] and a.active() == {}
    assert a.merge([m1]) == [] and a.active() == {}  # the older drain does not come back
    tie = Mark(V, "198.18.1.5:80", "drain", 7, "alpha")
    other = Mark(V, "198.18.1.5:80", "disabled", 7, "beta")
    x, y = MaintenanceMap([tie]), MaintenanceMap([other])
    x.merge([other]), y.merge([tie])
    assert x == y and x.digest() == y.digest() and x.active()[(V, "198.18.1.5:80")].state == "disabled"
    assert MaintenanceMap().digest() == b"" and len(x.digest()) == 8
    assert MaintenanceMap.from_json(x.to_json()) == x


def test_a_mark_reaches_the_peer_over_lossy_links():
    s = Sim(cluster_config(groups={"web": "alpha"}), seed=5, link=LOSSY)
    s.run(2500)
    s.call("beta", "set_maintenance", V, "198.18.1.4:80", "drain", by="root@beta", since=1)
    s.run(1000)
    assert _active(s, "alpha") == {(V, "198.18.1.4:80"): ("drain", "root@beta")}
    got = [a for t, a in s.events("alpha", MaintenanceChanged)]
    assert got and not got[0].local and s.events("beta", MaintenanceChanged)[0][1].local
    # converged: heartbeats carry the digest only
    s.run(500)
    t0 = s.now
    s.run(500)
    from hadirector.cluster.actions import Transmit
    sent = [a for t, a in s.nodes["alpha"].actions if t > t0 and isinstance(a, Transmit)]
    from hadirector.cluster.auth import Authenticator
    auth = Authenticator.from_config(s.config.cluster.auth)
    assert sent and all(decode(a.data, auth).announcement.marks == () for a in sent)
    assert all(decode(a.data, auth).announcement.maint_digest for a in sent)


def test_both_sides_of_a_partition_keep_their_marks_and_a_restart_keeps_the_map():
    s = Sim(cluster_config(groups={"web": "alpha"}), seed=6, link=LOSSY)
    s.run(2500)
    t_cut = s.now
    s.partition(("alpha",), ("beta",))
    s.call("alpha", "set_maintenance", V, "198.18.1.4:80", "drain", by="a")
    s.call("beta", "set_maintenance", V, "198.18.1.5:80", "disabled", by="b")
    s.call("beta", "set_maintenance", V, "198.18.1.4:80", "enabled", by="b")
    s.run(1000)
    t_heal = s.now
    s.heal()
    s.run(3000)
    assert _active(s, "alpha") == _active(s, "beta")
    # alpha's drain (counter 1) lost to beta's enable (counter 2): one winner everywhere
    assert set(_active(s, "alpha")) == {(V, "198.18.1.5:80")}
    s.crash("beta")
    s.run(1000)
    s.restart("beta")
    s.run(3000)
    assert _active(s, "beta") == _active(s, "alpha") and (V, "198.18.1.5:80") in _active(s, "beta")
    # both sides ran the group while cut apart (the test's partition), never otherwise
    assert s.overlaps_outside((t_cut, t_heal + 2000)) == []


def test_a_map_too_big_for_a_message_is_refused_at_the_command():
    s = Sim(cluster_config(groups={"web": "alpha"}), seed=7)
    s.run(2500)
    import pytest
    with pytest.raises(ValueError, match="would not fit in a heartbeat message"):
        for i in range(10_000):
            s.call("alpha", "set_maintenance", f"TCP 198.18.0.1:{i}", "198.18.1.4:80", "drain",
                   by="root@alpha-with-a-long-name")
    n = len(s.nodes["alpha"].core.maintenance.marks)
    assert 50 < n < 10_000
    s.run(1000)
    assert len(s.nodes["beta"].core.maintenance.marks) == n  # every mark got there
