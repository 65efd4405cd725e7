"""NodeCore on its own: what the daemon sees at start, shutdown, bad input, status."""

import json

import pytest

from hadirector.cluster.actions import (AcquireGroup, LeaveComplete, PacketDropped, Probe,
                                        ReleaseGroup, StopStale, Transmit)
from hadirector.cluster.messages import Kind, decode
from hadirector.cluster.node import NodeCore, link_names
from hadirector.cluster.sim import cluster_config
from hadirector.config.model import Link


def kinds(out, cls):
    return [a for a in out if isinstance(a, cls)]


def test_start_stops_stale_groups_and_sends_on_every_link():
    core = NodeCore(cluster_config(ping=("198.18.9.1",)), "alpha", 4, now=1000)
    out = core.start(1000)
    assert kinds(out, StopStale) == [StopStale("g-alpha"), StopStale("g-beta")]
    tx = kinds(out, Transmit)
    assert sorted(t.link for t in tx) == ["ucast:eth0", "ucast:eth1"]
    msg = decode(tx[0].data, core.auth)
    assert (msg.node, msg.generation, msg.seq, msg.kind) == ("alpha", 4, 1, Kind.UPDATE)
    assert kinds(out, Probe) == [Probe("198.18.9.1")]
    assert not kinds(out, AcquireGroup)
    assert core.next_deadline() == 1100
    with pytest.raises(RuntimeError, match="twice"):
        core.start(1000)


def test_single_node_cluster_takes_its_groups_at_once():
    core = NodeCore(cluster_config(nodes=("solo",)), "solo", 1, now=0)
    core.start(0)
    out = core.group_stopped("g-solo", 5)
    assert kinds(out, AcquireGroup) == [AcquireGroup("g-solo")]


def test_shutdown_releases_then_leaves_and_falls_silent():
    core = NodeCore(cluster_config(nodes=("solo",)), "solo", 1, now=0)
    core.start(0)
    core.group_stopped("g-solo", 0)
    core.group_started("g-solo", 10)
    out = core.shutdown(20)
    assert kinds(out, ReleaseGroup) == [ReleaseGroup("g-solo", "shutdown")]
    assert not kinds(out, LeaveComplete)
    out = core.group_stopped("g-solo", 30)
    leaves = [decode(t.data, core.auth).kind for t in kinds(out, Transmit)]
    assert leaves == [Kind.LEAVE] * 4  # two links, two copies each
    assert kinds(out, LeaveComplete) == [LeaveComplete()]
    assert core.on_timer(5000) == [] and core.on_datagram("ucast:eth0", b"x", 5000) == []


def test_bad_datagram_becomes_a_counted_event():
    core = NodeCore(cluster_config(), "alpha", 1, now=0)
    core.start(0)
    out = core.on_datagram("ucast:eth1", b"HD\x01", 10)
    assert out == [PacketDropped("ucast:eth1", "truncated", "3 bytes, a header is 8")]
    assert core.counters["truncated"] == 1


def test_status_is_plain_json():
    core = NodeCore(cluster_config(ping=("198.18.9.1",)), "alpha", 1, now=0)
    core.start(0)
    st = json.loads(json.dumps(core.status(50)))
    assert st["node"] == "alpha" and st["peers"]["beta"]["state"] == "init"
    assert st["groups"]["g-alpha"] == {"state": "stopping", "preferred": "alpha", "holders": [],
                                       "failed_here": False, "handed_to": None}
    assert st["connectivity"]["score_max"] == 1


def test_link_names_are_unique():
    links = [Link(kind="mcast", interface="eth0", group="239.0.0.1"),
             Link(kind="mcast", interface="eth0", group="239.0.0.2"),
             Link(kind="serial", device="/dev/ttyS0")]
    assert link_names(links) == ["mcast:eth0", "mcast:eth0#2", "serial:/dev/ttyS0"]


def test_config_that_cannot_fit_a_message_is_refused_up_front():
    groups = {f"group-with-a-rather-long-name-{i:03d}": "alpha" for i in range(150)}
    with pytest.raises(ValueError, match="would not fit"):
        NodeCore(cluster_config(groups=groups), "alpha", 1, now=0, max_size=4096)
    with pytest.raises(ValueError, match="'zed' is not in the cluster"):
        NodeCore(cluster_config(), "zed", 1, now=0)
