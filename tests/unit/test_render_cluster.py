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


QUORUM = {"quorate": True, "votes": 3, "expected": 3, "needed": 2, "witness": "none",
          "policy": "stop", "mode": "ok", "two_node": False, "wait_for_all": False,
          "waiting_for_all": False, "members": ["dir-a", "dir-b", "dir-c"], "since": None,
          "device": None}


def test_status_shows_quorum():
    text = render_status(dict(REPLY, quorum=QUORUM))
    assert "quorum: quorate (3 of 3 votes, 2 needed); no_quorum_policy stop\n" in text
    lost = dict(QUORUM, quorate=False, votes=1, mode="stop", members=["dir-b"])
    assert "quorum: NO QUORUM (1 of 3 votes, 2 needed); no_quorum_policy stop: groups stopped here" \
        in render_status(dict(REPLY, quorum=lost))
    frozen = dict(lost, policy="freeze", mode="freeze")
    assert "no_quorum_policy freeze: frozen: keeping what runs, starting nothing" \
        in render_status(dict(REPLY, quorum=frozen))
    two = dict(QUORUM, two_node=True, expected=2, needed=1)
    assert "quorum: two nodes, one vote is quorum (leases and probing decide); no_quorum_policy stop" \
        in render_status(dict(REPLY, quorum=two))
    wfa = dict(lost, waiting_for_all=True, wait_for_all=True)
    assert "quorum: NO QUORUM: waiting for all nodes (wait_for_all; 1 of 3 votes, 2 needed)" \
        in render_status(dict(REPLY, quorum=wfa))


def test_status_shows_the_witness():
    q = dict(QUORUM, expected=3, votes=2, witness="vote", two_node=False,
             device={"host": "198.18.0.9", "port": 5403, "algorithm": "ffsplit", "tls": False})
    text = render_status(dict(REPLY, quorum=q))
    assert "witness: qnetd 198.18.0.9:5403 (ffsplit, no TLS): vote\n" in text
    waiting = dict(q, witness="waiting", mode="freeze")
    assert "waiting for the witness's vote, nothing starts or stops" \
        in render_status(dict(REPLY, quorum=waiting))
    assert "quorum:" not in render_status(REPLY)  # a reply from an older daemon
