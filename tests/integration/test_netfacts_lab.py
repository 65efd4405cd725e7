"""dataplane/netfacts.py against iproute2: in a director's namespace, the facts read over rtnetlink
are the ones `ip -j addr`, `ip -j route get` and `ip -j neigh show` print (what the nft data plane
used before)."""

from __future__ import annotations

import json

import pytest

from hadirector.dataplane.base import DataPlaneError
from hadirector.dataplane.netfacts import NetFacts
from hadirector.lab import VIP, NetnsWorker, balancer
from hdtest import need_root


def ip_json(host, *args):
    out = host.run(["ip", "-j", *args]).stdout
    return json.loads(out) if out.strip() else []


def ip_neigh(host) -> dict:
    """What the data plane read from `ip -j neigh show` before."""
    return {(n["dst"], n["dev"]): n["lladdr"] for n in ip_json(host, "neigh", "show")
            if n.get("lladdr") and not {"FAILED", "INCOMPLETE"} & set(n.get("state", []))}


def test_facts_are_the_ones_iproute2_prints(lab):
    need_root("ip")
    bl = balancer(lab, layout="one-arm", reals=2, http=None)
    d = bl.director
    d.add_address("198.18.0.3/24", "eth0")
    d.run(["ip", "addr", "add", "198.18.0.4/24", "dev", "eth0", "label", "eth0:1"])
    d.route("198.18.2.0/24", via=bl.real_addr["real1"])
    for r in bl.real_addr.values():
        d.run(["ping", "-c", "1", "-W", "2", r])
    d.run(["ping", "-c", "1", "-W", "1", "198.18.0.99"], check=False)  # nobody: INCOMPLETE/FAILED
    with NetnsWorker(d.netns) as w:
        facts = w.call(NetFacts)
        try:
            got = w.call(facts.addresses)
            routes = {a: w.call(facts.route, a) for a in
                      [*bl.real_addr.values(), VIP, "198.18.2.5", "198.19.5.5", "127.0.0.1", "::1"]}
            # the table changes on its own (IPv6 neighbour discovery, an entry going STALE,
            # INCOMPLETE -> FAILED): compare with a listing that did not change around ours
            for _ in range(10):
                before = ip_neigh(d)
                neigh = w.call(facts.neighbours)
                if ip_neigh(d) == before:
                    break
            else:
                raise AssertionError("the neighbour table kept changing")
        finally:
            w.call(facts.close)
        with pytest.raises(DataPlaneError, match="netlink: list neighbours: the socket is closed"):
            w.call(facts.neighbours)

    want_local, want_dev, want_macs = set(), {}, {}
    for link in ip_json(d, "addr"):
        if link.get("address") and link.get("link_type") == "ether":
            want_macs[link["ifname"]] = link["address"]
        for a in link.get("addr_info", []):
            want_local.add(a["local"])
            want_dev.setdefault(a["local"], link["ifname"])
    assert got.local == want_local and got.dev == want_dev and got.macs == want_macs
    assert {"198.18.0.4", "127.0.0.1", "::1", VIP} <= got.local and got.dev["198.18.0.4"] == "eth0"
    assert any(a.startswith("fe80::") for a in got.local)  # IPv6 link-local addresses too

    assert neigh == before
    assert neigh[(bl.real_addr["real1"], "eth0")] == bl.real("real1").mac("eth0")
    assert ("198.18.0.99", "eth0") not in neigh

    for a, rt in routes.items():
        p = d.run(["ip", "-j", "route", "get", a], check=False)
        if p.returncode != 0:
            assert rt.dev is None and rt.error and rt.error in p.stderr, (a, rt, p.stderr)
            continue
        want = json.loads(p.stdout)[0]
        assert (rt.dev, rt.gateway, rt.error) == (want["dev"], want.get("gateway"), None), (a, rt, want)
    assert routes["198.18.2.5"].gateway == bl.real_addr["real1"]
    assert routes["198.19.5.5"].error == "Network is unreachable"
