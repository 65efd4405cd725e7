"""nft_render: golden files of the rendered ruleset, the transaction plan, schedulers' tables.

Regenerate the golden files after an intended change with
    HADIRECTOR_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_nft_render.py
and read the diff. tests/integration/test_nft_golden_load.py loads every one into a kernel.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from hadirector.balancer.state import build_desired
from hadirector.config.model import Balancer
from hadirector.dataplane.nft import adaptive_weights
from hadirector.dataplane.nft_render import (Existing, Link, NftOptions, RenderEnv, RenderError,
                                             existing_from_listing, existing_from_rendered,
                                             install_commands, is_ours, plan, render, wrr_sequence)

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "fixtures", "nft")
VIP = "198.18.0.100"
ENV = RenderEnv(
    links={"198.18.0.11": Link("eth0", "02:00:00:00:00:11"), "198.18.0.12": Link("eth0", "02:00:00:00:00:12"),
           "198.18.0.13": Link("eth1", "02:00:00:00:00:13"), "2001:2::11": Link("eth0", "02:00:00:00:00:11")},
    dev_macs={"eth0": "02:00:00:00:00:02", "eth1": "02:00:00:00:01:02"},
    vip_devs={VIP: "eth0", "198.18.0.101": "eth0", "2001:2::100": "eth0"},
    local_addrs=frozenset({"198.18.0.2", VIP}),
)


def _bal(*virtual, **glob):
    return Balancer.model_validate({**glob, "virtual": list(virtual)})


def _reals(method, weights, base="198.18.1.1"):
    return [{"address": f"{base}{i + 1}", "method": method, "weight": w} for i, w in enumerate(weights)]


CASES = {
    # classic LVS-NAT: wrr 3:1, persistence per /24 for 5 minutes
    "nat_wrr_persistent": (_bal({"address": VIP, "port": 80, "scheduler": "wrr", "persistent": 300,
                                 "netmask": "255.255.255.0", "reals": _reals("masq", [3, 1])}), {}, {}),
    # direct routing, rr over three reals (one on another device), one quiescent
    "dr_rr": (_bal({"address": VIP, "port": 80, "scheduler": "rr",
                    "reals": _reals("gate", [1, 1, 0], "198.18.0.1")}), {}, {}),
    # direct routing with sh; every real failed: the local fallback (another port) takes over
    "dr_sh_local_fallback": (_bal({"address": VIP, "port": 80, "scheduler": "sh", "quiescent": True,
                                   "fallback": {"address": "127.0.0.1", "port": 8080},
                                   "reals": _reals("gate", [2, 1], "198.18.0.1")}),
                             {(f"TCP {VIP}:80", "198.18.0.11", 80): False,
                              (f"TCP {VIP}:80", "198.18.0.12", 80): False}, {}),
    # fwmark service, Maglev, masquerade on the way out
    "fwmark_mh_snat": (_bal({"fwmark": 5, "scheduler": "mh", "schedflags": ["mh-port"],
                             "reals": _reals("masq", [1, 2, 1])}), {},
                       {"snat": "masquerade", "mh_size": 251}),
    # UDP with direct routing (flow memory for UDP: no closing set) and one-packet scheduling off
    # (checktype on: every real up, unchecked; `off` would install none, ldirectord _check_real)
    "dr_udp_wrr": (_bal({"address": "198.18.0.101", "port": 53, "protocol": "udp", "scheduler": "wrr",
                         "checktype": "on", "reals": _reals("gate", [4, 3, 2], "198.18.0.1")}), {}, {}),
    # IPv6 NAT and IPv6 direct routing
    "ipv6": (_bal({"address": "2001:2::100", "port": 443, "scheduler": "dh",
                   "reals": [{"address": "2001:2:1::11", "method": "masq"}, {"address": "2001:2:1::12", "method": "masq"}]},
                  {"address": "2001:2::100", "port": 80, "scheduler": "rr", "persistent": 60, "netmask": "64",
                   "reals": [{"address": "2001:2::11", "method": "gate"}]}), {}, {"snat": "2001:2:1::1"}),
    # weighted failover, and the lc family with weights measured by the driver
    "fo_and_wlc": (_bal({"address": VIP, "port": 80, "scheduler": "fo", "reals": _reals("masq", [1, 5, 5])},
                        {"address": VIP, "port": 443, "scheduler": "wlc", "reals": _reals("masq", [1, 1, 1])}),
                   {}, {"_weights": {(f"TCP {VIP}:443", ("198.18.1.11", 443)): 0,
                                     (f"TCP {VIP}:443", ("198.18.1.12", 443)): 5,
                                     (f"TCP {VIP}:443", ("198.18.1.13", 443)): 3}}),
}


def _render_case(name):
    bal, health, opts = CASES[name]
    opts = dict(opts)
    weights = opts.pop("_weights", {})
    env = RenderEnv(links=ENV.links, dev_macs=ENV.dev_macs, vip_devs=ENV.vip_devs,
                    local_addrs=ENV.local_addrs, weights=weights)
    return render(build_desired(bal, health), env, NftOptions(**opts))


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    got = {"nftables": install_commands(_render_case(name))}
    path = os.path.join(GOLDEN, f"{name}.json")
    text = json.dumps(got, indent=1, sort_keys=True) + "\n"
    if os.environ.get("HADIRECTOR_UPDATE_GOLDEN"):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        assert f.read() == text, f"{name}: rendering differs from {path}"


def _rules(rendered, fam, table):
    return rendered.tables[(fam, table)].rules


def _vmap_counts(rule_expr):
    """target chain -> number of positions, from a numgen/jhash vmap statement."""
    vm = next(e["vmap"] for e in rule_expr if "vmap" in e)
    counts: Counter[str] = Counter()
    for k, v in vm["data"]["set"]:
        n = k["range"][1] - k["range"][0] + 1 if isinstance(k, dict) else 1
        counts[v["goto"]["target"]] += n
    mod = next(iter(vm["key"].values()))["mod"]
    return counts, mod


def test_wrr_is_the_kernels_interleaved_order():
    assert wrr_sequence([4, 3, 2]) == [0, 0, 1, 0, 1, 2, 0, 1, 2]
    assert wrr_sequence([3, 1]) == [0, 0, 0, 1]
    assert Counter(wrr_sequence([6, 4, 2])) == {0: 3, 1: 2, 2: 1}  # divided by the gcd


def test_numgen_map_covers_the_cycle_in_weight_ratio():
    r = _render_case("nat_wrr_persistent")
    svc = [e for c, e in _rules(r, "ip", "hadirector") if c.startswith("svc_")]
    counts, mod = _vmap_counts(svc[-1])
    assert mod == 4 and sorted(counts.values()) == [1, 3]
    # big weights: ranges, still exact over one cycle
    b = _bal({"address": VIP, "port": 80, "reals": _reals("masq", [30000, 10001])})
    r = render(build_desired(b), ENV)
    svc = [e for c, e in _rules(r, "ip", "hadirector") if c.startswith("svc_")]
    counts, mod = _vmap_counts(svc[-1])
    assert mod == 40001 and sorted(counts.values()) == [10001, 30000]


def test_sh_and_mh_tables_share_positions_by_weight():
    r = _render_case("dr_udp_wrr")  # wrr 4:3:2 over numgen
    b = _bal({"address": VIP, "port": 80, "scheduler": "sh", "reals": _reals("gate", [2, 1, 1], "198.18.0.1")})
    r = render(build_desired(b), ENV)
    svc = [e for c, e in _rules(r, "netdev", "hadirector_eth0") if c.startswith("svc_") and
           any("vmap" in x for x in e)]
    counts, mod = _vmap_counts(svc[0])
    assert mod == 256 and sorted(counts.values()) == [64, 64, 128]
    b = _bal({"address": VIP, "port": 80, "scheduler": "mh", "reals": _reals("masq", [1, 1, 2])})
    r = render(build_desired(b), ENV, NftOptions(mh_size=4093))
    svc = [e for c, e in _rules(r, "ip", "hadirector") if c.startswith("svc_")]
    counts, mod = _vmap_counts(svc[-1])
    assert mod == 4093 and sum(counts.values()) == 4093
    big = max(counts.values())
    assert abs(big / 4093 - 0.5) < 0.05  # the weight-2 real holds about half


def test_quiescent_real_keeps_its_flows_but_gets_no_new_ones():
    r = _render_case("dr_rr")
    rules = _rules(r, "netdev", "hadirector_eth0")
    svc = [e for c, e in rules if c.startswith("svc_")]
    # three flow lookups (+ closing sets) including the weight-0 real, then the schedule
    lookups = [e for e in svc if e[0].get("match", {}).get("right", "").startswith("@flow_")]
    assert len(lookups) == 3
    counts, mod = _vmap_counts(svc[-1])
    assert mod == 2 and not any("198.18.0.13" in t for t in counts)
    # the real on eth1 is forwarded out of eth1 with eth1's MAC as source
    fwd = [e for c, e in rules if c.startswith("est_") and "198.18.0.13" in c and any("fwd" in x for x in e)]
    assert fwd[0][-1] == {"fwd": {"dev": "eth1"}}
    assert {"mangle": {"key": {"payload": {"protocol": "ether", "field": "saddr"}}, "value": "02:00:00:00:01:02"}} in fwd[0]


def test_errors_name_the_service_and_the_problem():
    key = f"TCP {VIP}:80"
    with pytest.raises(RenderError, match=rf"{key}: real 198.18.1.11:80 uses ipip"):
        render(build_desired(_bal({"address": VIP, "port": 80, "reals": _reals("ipip", [1])})), ENV)
    mixed = _reals("gate", [1], "198.18.0.1") + _reals("masq", [1])
    with pytest.raises(RenderError, match=rf"{key}: mixes gate reals"):
        render(build_desired(_bal({"address": VIP, "port": 80, "reals": mixed})), ENV)
    with pytest.raises(RenderError, match="FWM 3: direct routing"):
        render(build_desired(_bal({"fwmark": 3, "reals": _reals("gate", [1], "198.18.0.1")})), ENV)
    with pytest.raises(RenderError, match="cannot change the port"):
        render(build_desired(_bal({"address": VIP, "port": 80, "reals": [
            {"address": "198.18.0.11", "port": 8080, "method": "gate"}]})), ENV)
    with pytest.raises(RenderError, match="no link-layer address known for gate real 198.18.0.99"):
        render(build_desired(_bal({"address": VIP, "port": 80, "reals": [
            {"address": "198.18.0.99", "method": "gate"}]})), ENV)
    with pytest.raises(RenderError, match="no device known for VIP 198.18.0.200"):
        render(build_desired(_bal({"address": "198.18.0.200", "port": 80, "reals": [
            {"address": "198.18.0.11", "method": "gate"}]})), ENV)
    with pytest.raises(RenderError, match="snat"):
        NftOptions(snat="somewhere")
    with pytest.raises(RenderError, match=rf"{key}: snat address 2001:2::1 is not of the service's family"):
        render(build_desired(_bal({"address": VIP, "port": 80, "reals": _reals("masq", [1])})), ENV,
               NftOptions(snat="2001:2::1"))


def test_plan_keeps_sets_and_counters_and_deletes_only_what_is_gone():
    r = _render_case("dr_rr")
    t = r.tables[("netdev", "hadirector_eth0")]
    ex = Existing(chains={c: t.base.get(c, {}) for c in t.chains} | {"old_chain": {}},
                  sets={n: dict(d, name=n) for n, d in t.sets.items()} | {"old_set": {"type": "ipv4_addr"}},
                  counters=set(t.counters) | {"old_counter"})
    # a set whose definition changed is replaced
    changed = next(iter(t.sets))
    ex.sets[changed] = dict(ex.sets[changed], timeout=1)
    cmds = plan({("netdev", "hadirector_eth0"): ex, ("netdev", "hadirector_eth9"): Existing()}, r)
    verbs = [(next(iter(c)), next(iter(next(iter(c.values())))),
              next(iter(c.values()))[next(iter(next(iter(c.values()))))].get("name")) for c in cmds]
    assert ("delete", "table", "hadirector_eth9") in verbs
    assert ("delete", "chain", "old_chain") in verbs and ("delete", "set", "old_set") in verbs
    assert ("delete", "counter", "old_counter") in verbs
    assert ("delete", "set", changed) in verbs and ("add", "set", changed) in verbs
    added_sets = {n for v, k, n in verbs if v == "add" and k == "set"}
    assert added_sets == {changed}  # the others keep their elements
    assert not any(v == "add" and k == "counter" for v, k, n in verbs)
    # every existing chain is flushed before anything is deleted or added
    first_other = next(i for i, (v, k, n) in enumerate(verbs) if v not in ("flush",) and k == "chain" and v != "add")
    assert all(v == "flush" for v, k, n in verbs[2:first_other])
    # rules are all re-added
    assert sum(1 for v, k, n in verbs if k == "rule") == len(t.rules)
    # from nothing: the install batch
    assert plan({}, r) == install_commands(r)


def _verbs(cmds):
    return Counter((next(iter(c)), next(iter(next(iter(c.values()))))) for c in cmds)


def test_a_plan_from_a_listing_refills_every_chain_and_keeps_the_objects():
    """nftables 1.0.6 lists a netdev base chain without its "dev": the chain is still kept."""
    for name in sorted(CASES):
        r = _render_case(name)
        listed = {k: Existing(chains={c: {h: v for h, v in t.base.get(c, {}).items() if h != "dev"}
                                      for c in reversed(t.chains)},
                              sets={n: dict(d, name=n, handle=7) for n, d in t.sets.items()},
                              counters=set(t.counters))
                  for k, t in r.tables.items()}
        verbs = _verbs(plan(listed, r))
        assert set(verbs) == {("add", "table"), ("flush", "chain"), ("add", "rule")}, (name, verbs)
        assert verbs[("add", "rule")] == sum(len(t.rules) for t in r.tables.values())
        assert verbs[("flush", "chain")] == sum(len(t.chains) for t in r.tables.values())


def test_a_plan_from_what_we_installed_refills_only_the_chains_that_changed():
    """The data plane plans the next apply from the tables it installed (Existing.rules): a
    chain whose rules are the same and that uses nothing deleted is left alone."""
    for name in sorted(CASES):
        r = _render_case(name)
        held = {k: existing_from_rendered(t) for k, t in r.tables.items()}
        assert plan(held, r) == [{"add": {"table": {"family": f, "name": n}}} for f, n in sorted(r.tables)]
    bal = _bal({"address": VIP, "port": 80, "scheduler": "wrr", "reals": _reals("gate", [1, 1, 1], "198.18.0.1")})
    key = f"TCP {VIP}:80"
    before = render(build_desired(bal), ENV)
    after = render(build_desired(bal, {(key, "198.18.0.11", 80): False}), ENV)  # real 1 fails
    held = {k: existing_from_rendered(t) for k, t in before.tables.items()}
    cmds = plan(held, after)
    t_old, t_new = before.tables[("netdev", "hadirector_eth0")], after.tables[("netdev", "hadirector_eth0")]
    def rules(t):
        out = {}
        for c, e in t.rules:
            out.setdefault(c, []).append(e)
        return out
    changed = {c for c in t_new.chains if c in t_old.chains and rules(t_old).get(c) != rules(t_new).get(c)}
    gone = set(t_old.chains) - set(t_new.chains)
    flushed = {c["flush"]["chain"]["name"] for c in cmds if "flush" in c}
    assert gone and changed and flushed == changed | gone  # real 1's chains go, the dispatch changes
    assert flushed < set(t_old.chains)  # the other reals' chains are left alone
    added = [c["add"]["rule"] for c in cmds if "add" in c and "rule" in c["add"]]
    assert {a["chain"] for a in added} == changed
    assert len(added) == sum(len(rules(t_new)[c]) for c in changed)
    # a set deleted (here: its definition changed) refills every chain that used it
    t = before.tables[("netdev", "hadirector_eth0")]
    some_set = next(iter(t.sets))
    held = {k: existing_from_rendered(x) for k, x in before.tables.items()}
    held[("netdev", "hadirector_eth0")].sets[some_set] = dict(t.sets[some_set], timeout=1)
    users = {c for c, rs in rules(t).items() if "@" + some_set in json.dumps(rs)}
    cmds = plan(held, before)
    assert users and {c["flush"]["chain"]["name"] for c in cmds if "flush" in c} == users
    assert ({"delete": {"set": {"family": "netdev", "table": "hadirector_eth0", "name": some_set}}} in cmds)


def test_existing_from_listing_and_ownership():
    items = [{"table": {"family": "ip", "name": "hadirector"}},
             {"chain": {"family": "ip", "table": "hadirector", "name": "prerouting", "type": "nat",
                        "hook": "prerouting", "prio": -100, "policy": "accept", "handle": 3}},
             {"chain": {"family": "ip", "table": "other", "name": "x"}},
             {"set": {"family": "ip", "table": "hadirector", "name": "s", "type": "ipv4_addr"}},
             {"counter": {"family": "ip", "table": "hadirector", "name": "c", "packets": 1}}]
    ex = existing_from_listing(items, "ip", "hadirector")
    assert ex.chains == {"prerouting": {"type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}
    assert set(ex.sets) == {"s"} and ex.counters == {"c"}
    assert is_ours("ip", "hadirector") and is_ours("ip6", "hadirector") and is_ours("netdev", "hadirector_eth0")
    assert not is_ours("ip", "hadirector2") and not is_ours("inet", "hadirector")
    assert not is_ours("netdev", "other_eth0") and not is_ours("ip", "filter")


def test_adaptive_weights_follow_the_ipvs_schedulers():
    b = _bal({"address": VIP, "port": 80, "scheduler": "lc", "reals": _reals("masq", [1, 1, 1])},
             {"address": VIP, "port": 81, "scheduler": "wlc", "reals": _reals("masq", [3, 1, 0])},
             {"address": VIP, "port": 82, "scheduler": "wrr",
              "reals": [{"address": "198.18.1.11", "upper_threshold": 10}, {"address": "198.18.1.12"}]})
    d = build_desired(b)
    k80 = f"TCP {VIP}:80"
    active = {(k80, ("198.18.1.11", 80)): 10}
    w = adaptive_weights(d, active, {})
    # lc: the busy real gets nothing until the others caught up with it
    assert w[(k80, ("198.18.1.11", 80))] == 0
    assert w[(k80, ("198.18.1.12", 80))] == w[(k80, ("198.18.1.13", 80))] > 0
    # wlc with nothing open: weight ratio; weight 0 nothing
    k81 = f"TCP {VIP}:81"
    assert w[(k81, ("198.18.1.11", 81))] == 3 * w[(k81, ("198.18.1.12", 81))]
    assert w[(k81, ("198.18.1.13", 81))] == 0
    # thresholds only: configured weight until the upper threshold is reached
    k82 = f"TCP {VIP}:82"
    assert w[(k82, ("198.18.1.11", 82))] == 1
    w = adaptive_weights(d, {(k82, ("198.18.1.11", 82)): 7}, {(k82, ("198.18.1.11", 82)): 3})
    assert w[(k82, ("198.18.1.11", 82))] == 0 and w[(k82, ("198.18.1.12", 82))] == 1
