"""render/cluster.py: the status text, crm_mon-like, from a fixed reply (pure; the times are
relative to the reply's own `now`)."""

import time

from hadirector.render.cluster import render_status

NOW = time.mktime((2026, 3, 4, 12, 0, 0, 0, 0, -1))


def reply(**over):
    st = {"cluster": "web", "node": "beta", "generation": 7, "phase": "running", "now": NOW,
          "nodes": [{"name": "beta", "local": True, "status": "active", "score": 1, "score_max": 2,
                     "since": NOW - 300, "links": [{"name": "ucast:eth0", "status": "up"}]},
                    {"name": "alpha", "status": "dead", "score": None, "score_max": None,
                     "since": NOW - 42, "failed_groups": ["db"],
                     "links": [{"name": "ucast:eth0", "status": "dead", "since": NOW - 42}]}],
          "groups": [{"name": "web", "preferred": "alpha", "owner": "beta", "state": "held",
                      "since": NOW - 40, "failed_here": False, "resources": ["vip 198.18.0.100"]}],
          "failed_actions": [{"group": "web", "resource": "vip 198.18.0.100", "action": "start",
                              "node": "beta", "reason": "interface eth9 does not exist", "time": NOW - 3600}]}
    st.update(over)
    return st


def test_since_scores_and_failed_actions():
    text = render_status(reply())
    lines = text.splitlines()
    assert lines[0] == "cluster web: node beta (generation 7), running"
    assert lines[1].split() == ["NODE", "STATUS", "SCORE", "SINCE", "LINKS"]
    assert "1/2" in lines[2] and "11:55:00 (5m ago)" in lines[2]
    assert lines[3].split()[:3] == ["alpha", "dead", "-"] and "ucast:eth0 dead (42s ago)" in lines[3]
    assert "11:59:20 (40s ago)" in next(l for l in lines if l.startswith("web "))
    assert "Failed actions:" in lines
    assert ("* group web: vip 198.18.0.100 start on beta failed 11:00:00 (60m ago): interface eth9 "
            "does not exist") in lines
    assert "* group db: failed on alpha (not a candidate for it until `takeover`)" in lines


def test_no_failures_no_section_and_no_ping_nodes_plain_scores():
    st = reply(failed_actions=[])
    st["nodes"][1]["failed_groups"] = []
    st["nodes"][0]["score_max"] = 0
    text = render_status(st)
    assert "Failed actions" not in text
    assert text.splitlines()[2].split()[4] == "1"  # "beta (this node)  active  1 ..."
