"""resources/lease.py's pure parts: the table, the chains of a device, the drain set and rules."""

from __future__ import annotations

from hadirector.resources import lease


def _rules(cmds, chain):
    return [c["add"]["rule"]["expr"] for c in cmds if "rule" in c.get("add", {})
            and c["add"]["rule"]["chain"] == chain]


def test_the_table_has_guard_lease_and_drain_sets_per_family():
    sets = {c["add"]["set"]["name"]: c["add"]["set"] for c in lease.table_commands() if "set" in c["add"]}
    assert sorted(sets) == ["drain4", "drain6", "lease4", "lease6", "vip4", "vip6"]
    assert sets["lease4"]["flags"] == ["timeout"] and "flags" not in sets["drain4"]
    assert sets["drain6"]["type"] == "ipv6_addr" and sets["drain4"]["type"] == "ipv4_addr"


def test_ingress_drops_and_counts_new_tcp_connections_to_a_draining_address():
    cmds = lease.device_commands("eth0")
    ingress, egress = _rules(cmds, "in_eth0"), _rules(cmds, "out_eth0")
    drains = [r for r in ingress if any(e.get("match", {}).get("right", "") in ("@drain4", "@drain6")
                                        for e in r)]
    assert len(drains) == 2 and len(ingress) == 5
    syn = {"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}},
                                                ["syn", "ack"]]}, "right": "syn"}}
    for r, proto, v in zip(drains, ("ip", "ip6"), ("4", "6")):
        assert r == [{"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "daddr"}},
                                "right": f"@drain{v}"}}, syn, {"counter": None}, {"drop": None}]
    # the unleased drops come first and egress has no drain rule (our answers still go out)
    assert all("@drain" not in str(r) for r in ingress[:3] + egress) and len(egress) == 3


def test_drain_elements_and_their_counters():
    assert lease.drain_commands("198.18.0.100", True) == [{"add": {"element": {
        "family": "netdev", "table": "hdlease", "name": "drain4", "elem": ["198.18.0.100"]}}}]
    assert lease.drain_commands("2001:2::100", False) == [{"delete": {"element": {
        "family": "netdev", "table": "hdlease", "name": "drain6", "elem": ["2001:2::100"]}}}]
    listing = [{"table": {"name": "hdlease"}},
               {"rule": {"chain": "in_eth0", "expr": [{"match": {"right": "@vip4"}}, {"drop": None}]}},
               {"rule": {"chain": "in_eth0", "expr": [{"match": {"op": "==", "right": "@drain4"}},
                                                      {"counter": {"packets": 3, "bytes": 180}},
                                                      {"drop": None}]}},
               {"rule": {"chain": "in_eth1", "expr": [{"match": {"op": "==", "right": "@drain6"}},
                                                      {"counter": {"packets": 2, "bytes": 160}},
                                                      {"drop": None}]}}]
    assert lease.drained_syns(listing) == 5
    assert lease.drained_syns([]) == 0
