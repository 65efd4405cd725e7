"""`hadirector status` shows the witness connection (render/cluster.py witness_line)."""

from hadirector.render.cluster import render_status, witness_line

W = {"state": "connected", "vote": "ack", "server": "198.18.9.1:5403", "connected_for_ms": 12345,
     "ring_id": "1.3", "node_id": 1, "algorithm": "ffsplit", "tls": False, "answer_pending": False,
     "last_error": None, "heartbeat_interval_ms": 2000}


def test_connected_with_the_vote():
    assert witness_line(W) == ("witness connection 198.18.9.1:5403: connected 12 s, qnetd says ACK; "
                               "ring 1.3, node id 1, heartbeat 2000 ms")


def test_lost_shows_why():
    line = witness_line({**W, "state": "idle", "vote": None, "last_error": "lost: no echo reply within 2000 ms"})
    assert line.startswith("witness connection 198.18.9.1:5403: not connected, no vote;")
    assert line.endswith("last error: lost: no echo reply within 2000 ms")


def test_pending_and_refused():
    line = witness_line({**W, "vote": "nack", "answer_pending": True})
    assert "qnetd says NACK; waiting for qnetd's answer to the new membership;" in line


def test_status_has_the_line_only_with_a_witness():
    st = {"cluster": "c", "node": "a", "generation": 1, "nodes": [], "now": 0.0}
    assert "witness" not in render_status(st)
    assert "witness connection 198.18.9.1:5403" in render_status({**st, "witness": W})
