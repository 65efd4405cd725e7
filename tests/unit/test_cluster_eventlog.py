"""The log line of every action and event the cluster cores return (cluster/eventlog.py)."""

import dataclasses
import inspect
import logging

from hadirector.cluster import actions as A
from hadirector.cluster.eventlog import _TEXT, describe


def test_every_action_and_event_has_its_line():
    kinds = {c for _, c in inspect.getmembers(A, inspect.isclass)
             if dataclasses.is_dataclass(c) and c.__module__ == A.__name__}
    # AnnounceNow never leaves NodeCore (it becomes a Transmit)
    assert kinds - set(_TEXT) == {A.AnnounceNow}


def test_lines_name_the_thing_first():
    line = describe(A.NodeChanged("beta", "active", "dead", "silent on every link for 500 ms"), "alpha")
    assert (line.level, line.text) == (logging.WARNING, "node beta: active -> dead (silent on every "
                                                        "link for 500 ms)")
    assert describe(A.ReleaseGroup("web", "failback"), "alpha").text == \
        "group web: releasing from alpha (failback)"
    line = describe(A.StartCancelled("web", "vip: cancelled"), "alpha")
    assert line.level == logging.INFO and line.text.startswith("group web: vip: cancelled while being "
                                                               "released from alpha")
    assert describe(A.LinkDown("beta", "ucast:eth1", "silent 500 ms"), "alpha").text == \
        "link ucast:eth1 to beta: dead (silent 500 ms)"


def test_dropped_packets_are_rate_limited_per_link_and_reason():
    line = describe(A.PacketDropped("ucast:eth0", "auth", "bad digest"), "alpha")
    assert line.limit_key == "dropped:ucast:eth0:auth"
    assert line.text == "link ucast:eth0: dropped packet (auth): bad digest"


def test_what_the_driver_carries_out_silently_and_what_it_does_not_know():
    assert describe(A.Transmit("ucast:eth0", b"x"), "alpha") is None
    assert describe(A.Probe("198.18.0.1"), "alpha") is None
    line = describe(A.AnnounceNow(), "alpha")
    assert (line.level, line.text) == (logging.DEBUG, "node alpha: AnnounceNow()")


def test_misconfiguration_lines_say_where_to_look():
    line = describe(A.PacketDropped("ucast:eth1", "bad_auth", "MAC does not match sha1 key 1 (another secret "
                                    "under authkeys index 1, or a forged or corrupted packet)", "198.18.1.3"),
                    "alpha")
    assert line.text.startswith("link ucast:eth1: dropped packet from 198.18.1.3 (bad_auth): ")
    assert "authkeys index 1" in line.text and line.limit_key == "dropped:ucast:eth1:bad_auth"
    assert describe(A.NothingListens("ucast:eth1", "198.18.1.3", 694, 1), "alpha").text.startswith(
        "link ucast:eth1: nothing listens on 198.18.1.3:694 (udpport or ucast differs?)")
    line = describe(A.HeldElsewhere("web", "198.18.0.100", "02:00:00:00:00:01", "eth0", ("d1",)), "d2")
    assert line.level == logging.WARNING and line.text == (
        "group web: peer d1 is silent on every heartbeat link but answers for 198.18.0.100 on eth0: "
        "heartbeat links down, not taking over (02:00:00:00:00:01 answers)")
    assert describe(A.Lease("web", ("198.18.0.100",), 500), "d2") is None
    assert describe(A.ProbeAddress("198.18.0.100"), "d2") is None
