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
    assert kinds(out, ReleaseGroup) == [ReleaseGroup("g-solo", "shutdown", drain=True)]
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
                                       "failed_here": False, "handed_to": None, "owner_age_ms": 50}
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


# --------------------------------------------------------------------------- loud misconfiguration

def _peer_packet(key="sim-key", index=1, seq=1):
    from hadirector.cluster.auth import Authenticator
    from hadirector.cluster.messages import Announcement, Message, encode
    return encode(Message(Kind.HEARTBEAT, "sim", "beta", 1, seq, 100, 500, Announcement()),
                  Authenticator("sha256", key.encode(), index))


def test_a_bad_mac_names_its_source_and_the_authkeys_index_and_is_counted_per_link():
    core = NodeCore(cluster_config(), "alpha", 1, now=0)
    core.start(0)
    (drop,) = core.on_datagram("ucast:eth0", _peer_packet(key="another secret"), 10, source="198.18.0.3")
    assert (drop.reason, drop.source) == ("bad_auth", "198.18.0.3")
    assert "sha256 key 1" in drop.detail and "authkeys index 1" in drop.detail
    (drop,) = core.on_datagram("ucast:eth1", _peer_packet(index=2), 20, source="198.18.1.3")
    assert drop.detail == "signed with sha256 key 2, expected sha256 key 1"
    # forged with trailing bytes: bad_auth too, not malformed
    (drop,) = core.on_datagram("ucast:eth0", _peer_packet(seq=2) + b"\0\0", 30, source="198.18.0.3")
    assert drop.reason == "bad_auth" and "2 bytes more than the header announces" in drop.detail
    links = core.status(40)["links"]
    assert links["ucast:eth0"]["dropped"] == {"bad_auth": 2}
    assert links["ucast:eth0"]["last_bad_auth"]["source"] == "198.18.0.3"
    assert links["ucast:eth1"]["dropped"] == {"bad_auth": 1}


def test_port_unreachable_while_the_link_is_silent_is_reported_once_per_episode():
    from hadirector.cluster.actions import NothingListens
    core = NodeCore(cluster_config(), "alpha", 1, now=0)
    core.start(0)
    out = core.link_unreachable("ucast:eth0", "198.18.0.1", 694, 100)
    assert out == [NothingListens("ucast:eth0", "198.18.0.1", 694, 1)]
    assert core.link_unreachable("ucast:eth0", "198.18.0.1", 694, 200) == []
    st = core.status(250)["links"]["ucast:eth0"]["unreachable"]
    assert st == [{"address": "198.18.0.1", "port": 694, "count": 2, "silent_ms": 50, "reported": True}]
    core.on_timer(9000)  # Linux rate-limits ICMP errors to ~1/s: 9 s quiet is still the episode
    assert core.link_unreachable("ucast:eth0", "198.18.0.1", 694, 9100) == []
    core.on_timer(19200)  # 10 s without errors: the episode is over
    assert core.link_unreachable("ucast:eth0", "198.18.0.1", 694, 19300) == \
        [NothingListens("ucast:eth0", "198.18.0.1", 694, 1)]
    # a peer heard on the link: errors from another address there are no silence (a stale ucast line)
    good = NodeCore(cluster_config(), "beta", 1, now=0)
    good.start(0)
    pkt = [t.data for t in kinds(good.on_timer(100), Transmit) if t.link == "ucast:eth1"][0]
    core.on_datagram("ucast:eth1", pkt, 19350)
    assert core.link_unreachable("ucast:eth1", "198.18.1.9", 694, 19360) == []
    with pytest.raises(ValueError, match="unknown link"):
        core.link_unreachable("ucast:eth7", "198.18.0.1", 694, 19400)


def test_vip_groups_get_a_lease_derived_from_keepalive_and_deadtime():
    from hadirector.cluster.actions import Lease
    from hadirector.cluster.guard import GuardTiming
    assert GuardTiming.derive(100, 500) == GuardTiming(lease=300, renew=100, probe=25, slow_probe=100)
    assert GuardTiming.derive(1000, 30_000).lease == 28_000  # heartbeat's defaults
    assert GuardTiming.derive(100, 201) == GuardTiming(lease=67, renew=22, probe=25, slow_probe=100)
    core = NodeCore(cluster_config(nodes=("solo",), vips=True), "solo", 1, now=0)
    core.start(0)
    out = core.group_stopped("g-solo", 5)
    # the lease is renewed before the start, so the VIP answers from its first moment
    assert [type(a).__name__ for a in out if isinstance(a, (Lease, AcquireGroup))] == ["Lease", "AcquireGroup"]
    assert kinds(out, Lease) == [Lease("g-solo", ("198.18.0.100",), 305)]
    core.group_started("g-solo", 50)
    assert kinds(core.on_timer(105), Lease) == [Lease("g-solo", ("198.18.0.100",), 405)]
    assert core.status(110)["groups"]["g-solo"]["lease_until"] == 405
