"""Connectivity score (ha.cf ping / ping_group / deadping) with a hand-advanced clock."""

import pytest

from hadirector.cluster.actions import PingChanged, Probe, ScoreChanged
from hadirector.cluster.connectivity import Connectivity
from hadirector.config.model import PingGroup


def mk(now=0):
    return Connectivity(["198.18.0.1", "198.18.0.2"],
                        [PingGroup(name="routers", addresses=("198.18.1.1", "198.18.1.2"))],
                        interval=100, deadping=1000, now=now)


def test_probes_every_address_every_interval():
    c = mk()
    assert c.on_timer(0) == [Probe("198.18.0.1"), Probe("198.18.0.2"), Probe("198.18.1.1"),
                             Probe("198.18.1.2")]
    assert c.next_deadline() == 100
    assert c.on_timer(50) == []
    assert len(c.on_timer(100)) == 4


def test_optimistic_start_then_down_after_deadping_without_reply():
    c = mk()
    assert (c.score, c.score_max) == (3, 3)
    c.on_timer(0)
    for t in (1, 101, 201):
        c.on_reply("198.18.0.1", t)
        c.on_reply("198.18.1.2", t)
    ev = c.on_timer(1000)  # 198.18.0.2 never answered; the group answered through one member
    assert PingChanged("198.18.0.2", False) in ev
    assert ScoreChanged(3, 2) in ev
    assert c.snapshot(1000)["groups"] == {"routers": True}
    ev = c.on_timer(1201)  # last reply at 201
    assert PingChanged("198.18.0.1", False) in ev and PingChanged("routers", False) in ev
    assert c.score == 0
    ev = c.on_reply("198.18.1.1", 1300)
    assert ev == [PingChanged("routers", True), ScoreChanged(0, 1)]


def test_next_deadline_only_counts_live_addresses():
    c = Connectivity(["198.18.0.1"], [], interval=10_000, deadping=500, now=0)
    c.on_timer(0)
    assert c.next_deadline() == 500
    c.on_timer(500)
    assert c.score == 0
    assert c.next_deadline() == 10_000  # nothing expires any more: only the next probe
    c.on_reply("198.18.0.1", 600)
    assert c.next_deadline() == 1100


def test_nothing_to_ping():
    c = Connectivity([], [], interval=100, deadping=100, now=0)
    assert (c.score, c.score_max, c.next_deadline(), c.on_timer(5)) == (0, 0, None, [])


def test_stray_reply_ignored_and_bad_args():
    c = mk()
    assert c.on_reply("203.0.113.9", 5) == []
    with pytest.raises(ValueError, match="positive"):
        Connectivity(["198.18.0.1"], [], interval=0, deadping=100, now=0)
    with pytest.raises(ValueError, match="no address"):
        Connectivity([], [("empty", ())], interval=10, deadping=100, now=0)
