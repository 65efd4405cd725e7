"""`hadirector status` text from the daemon's status reply (render/cluster.py), pure."""

from hadirector.render.cluster import render_status

REPLY = {
    "cluster": "lab", "node": "dir-b", "generation": 3, "phase": "running",
    "nodes": [{"name": "dir-b", "local": True, "status": "active", "score": 0,
               "links": [{"name": "ucast:eth1", "status": "up"}]},
              {"name": "dir-a", "status": "heartbeat lost, alive on eth0",
               "links": [{"name": "ucast:eth1", "status": "dead"}]}],
    "groups": [{"name": "198.18.0.100", "preferred": "dir-a", "owner": "dir-a", "state": "claim",
                "resources": ["vip 198.18.0.100"]}],
    "dropped": {"bad_auth": 12},
    "links": {"ucast:eth1": {"sent": 40, "dropped": {"bad_auth": 12},
                             "last_bad_auth": {"source": "198.18.1.2", "detail": "MAC does not match "
                                               "sha1 key 1 (another secret under authkeys index 1)"},
                             "unreachable": [{"address": "198.18.1.2", "port": 694, "count": 3,
                                              "silent_ms": 10, "reported": True}]}},
}


def test_status_shows_a_peer_alive_on_the_lan_and_what_each_link_dropped():
    text = render_status(REPLY)
    assert "dir-a              heartbeat lost, alive on eth0" in text
    assert ("link ucast:eth1: dropped bad_auth 12; last bad MAC from 198.18.1.2: MAC does not match "
            "sha1 key 1 (another secret under authkeys index 1); nothing listens on 198.18.1.2:694 "
            "(udpport or ucast differs?), 3 ICMP port unreachable") in text
    quiet = dict(REPLY, links={"ucast:eth1": {"sent": 40, "dropped": {}, "unreachable": []}})
    assert "link ucast:eth1" not in render_status(quiet)
