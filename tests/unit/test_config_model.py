"""Pure model helpers and defaults that the legacy import relies on."""

from __future__ import annotations

import pytest

from hadirector.config.model import Auth, Link, Timing


def test_remote_peers_drops_local_addresses():
    link = Link(kind="ucast", interface="eth1", peers=["198.18.0.1", "198.18.0.2", "fd00::2"])
    assert link.remote_peers(["198.18.0.2"]) == ("198.18.0.1", "fd00::2")
    assert link.remote_peers(["fd00:0::2", "198.18.9.9"]) == ("198.18.0.1", "198.18.0.2")
    assert link.remote_peers([]) == link.peers
    # one ha.cf serves both nodes: each keeps only the other
    both = Link(kind="ucast", interface="eth1", peers=["198.18.0.1", "198.18.0.2"])
    assert both.remote_peers(["198.18.0.1"]) == ("198.18.0.2",)
    assert both.remote_peers(["198.18.0.2"]) == ("198.18.0.1",)


@pytest.mark.parametrize("deadtime,initdead", [("30s", 30_000), ("10500ms", 10_500), ("5s", 12_000),
                                               ("8s", 16_000), ("10s", 20_000)])
def test_initdead_default_follows_heartbeat(deadtime, initdead):
    t = Timing(keepalive="1s", deadtime=deadtime)
    assert t.initdead == initdead
    assert t.warntime == t.deadtime // 2


def test_auth_index_zero_is_valid():
    # heartbeat MAXAUTH 16: key numbers 0..15
    assert Auth(method="sha1", key="k", index=0).index == 0
    with pytest.raises(ValueError):
        Auth(method="sha1", key="k", index=16)
