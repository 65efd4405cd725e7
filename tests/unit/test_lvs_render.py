"""Golden-file tests of the ipvsadm-style renderer (status.py).

tests/fixtures/lvs/handwritten.txt was produced independently of our code, with the C printf
formats of ipvsadm.c (`printf '  -> %-28s %-7s %-6d %-10u %-10u\\n' ...` in a shell). The other
fixtures were rendered once and checked by eye against ipvsadm's formats; regenerate them with
UPDATE_GOLDEN=1 after an intended change and review the diff.
"""

import json
import os

import pytest

from hadirector.balancer.state import RealHealth, build_desired
from hadirector.config.model import Balancer
from hadirector.dataplane.base import BalancerStats, Counters, Rates, RealStats, ServiceStats
from hadirector.render.lvs import decode_snapshot, largenum, lvs_json, lvs_snapshot, render_lvs

FIX = os.path.join(os.path.dirname(__file__), "..", "fixtures", "lvs")


def golden(name: str, text: str) -> None:
    path = os.path.join(FIX, name)
    if os.environ.get("UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        assert text == f.read()


def handwritten_case():
    b = Balancer(virtual=[
        {"address": "192.168.0.100", "port": 80, "scheduler": "wlc", "reals": [
            {"address": "192.168.0.102", "port": 8080, "method": "masq", "weight": 3},
            {"address": "192.168.0.101", "method": "gate", "weight": 1}]},
        {"address": "192.168.0.100", "port": 53, "protocol": "udp", "scheduler": "rr",
         "persistent": 360, "netmask": "255.255.255.0", "quiescent": True,
         "reals": [{"address": "192.168.0.101"}]},
    ])
    d = build_desired(b, {("UDP 192.168.0.100:53", "192.168.0.101", 53): RealHealth(up=False)})
    st = BalancerStats(services={
        "TCP 192.168.0.100:80": ServiceStats(reals={("192.168.0.102", 8080): RealStats(active=17, inactive=211)}),
        "UDP 192.168.0.100:53": ServiceStats(reals={("192.168.0.101", 53): RealStats(inactive=4)}),
    })
    return d, st


def test_matches_handwritten_ipvsadm_output():
    d, st = handwritten_case()
    golden("handwritten.txt", render_lvs(d, st))


def big_case():
    b = Balancer(virtual=[
        {"address": "10.0.0.1", "port": 443, "scheduler": "sh", "schedflags": ["sh-fallback", "sh-port"],
         "reals": [{"address": "10.0.1.1", "weight": 65535}, {"address": "10.0.1.2", "method": "ipip"}]},
        {"fwmark": 7, "scheduler": "mh", "schedflags": ["mh-port"], "persistent": 60,
         "reals": [{"address": "10.0.2.1", "port": 80}]},
        {"address": "2001:db8::1", "port": 53, "protocol": "udp", "scheduler": "rr", "ops": True,
         "persistent": 30, "netmask": "64", "reals": [{"address": "2001:db8::10"}]},
        {"address": "10.0.0.1", "port": 80, "scheduler": "wrr", "fallback": {"address": "127.0.0.1", "port": 80},
         "reals": [{"address": "10.0.1.1"}]},
        {"address": "10.0.0.1", "port": 25, "scheduler": "lblcr", "reals": [{"address": "10.0.1.9"}]},
    ])
    health = {("TCP 10.0.0.1:80", "10.0.1.1", 80): False}
    d = build_desired(b, health)
    c = Counters(conns=123_456_789, inpkts=99_999_999, outpkts=100_000_000,
                 inbytes=98_765_432_101, outbytes=123_456_789_012_345_678)
    st = BalancerStats(services={
        "TCP 10.0.0.1:443": ServiceStats(counters=c, rates=Rates(1234, 5678, 9012, 345_678_901, 12),
                                         reals={("10.0.1.1", 443): RealStats(counters=c, rates=Rates(
                                             7, 8, 9, 1_000_000_000, 2), active=3, inactive=1)}),
    })
    return d, st


@pytest.mark.parametrize("mode,exact,name", [
    ("list", False, "big_list.txt"), ("stats", False, "big_stats.txt"),
    ("stats", True, "big_stats_exact.txt"), ("rate", False, "big_rate.txt"),
])
def test_golden_modes(mode, exact, name):
    d, st = big_case()
    golden(name, render_lvs(d, st, mode=mode, exact=exact))


def test_names_without_numeric():
    d, st = handwritten_case()
    hosts = {"192.168.0.100": "vip.example", "192.168.0.101": "web1.example"}
    ports = {(80, "tcp"): "http", (53, "udp"): "domain"}
    text = render_lvs(d, st, numeric=False, host_name=hosts.get,
                      port_name=lambda p, proto: ports.get((p, proto)))
    golden("names.txt", text)
    assert "TCP  vip.example:http wlc" in text
    assert "  -> 192.168.0.102:8080 " in text  # unknown names stay numeric


def test_sort_order_is_ipvsadm_order():
    d, _ = big_case()
    heads = [ln.split()[0] + " " + ln.split()[1] for ln in render_lvs(d).splitlines()[3:]
             if not ln.startswith("  ->")]
    # fwmark 0 first (TCP by address then port, then UDP, IPv6 after IPv4), then FWM 7
    assert heads == ["TCP 10.0.0.1:25", "TCP 10.0.0.1:80", "TCP 10.0.0.1:443",
                     "UDP [2001:db8::1]:53", "FWM 7"]


def test_long_names_are_cut_like_ipvsadm():
    b = Balancer(virtual=[{"address": "10.0.0.1", "port": 80,
                           "reals": [{"address": "10.0.1.1"}]}])
    d = build_desired(b)
    text = render_lvs(d, numeric=False, host_name=lambda a: "a-very-long-host-name.example.org",
                      port_name=lambda p, proto: None)
    svc = [ln for ln in text.splitlines() if ln.startswith("TCP")][0]
    dest = [ln for ln in text.splitlines() if ln.startswith("  ->")][1]  # [0] is the title
    assert svc == "TCP  a-very-long-host-name.exampl wrr"  # svc_name[33] = 0: 33 characters
    assert dest[5:33] == "a-very-long-host-name.exampl"  # dname[28] = 0


@pytest.mark.parametrize("value,text", [
    (0, "        0"), (99_999_999, " 99999999"), (100_000_000, "  100000K"),
    (999_999_999, "  999999K"), (1_000_000_000, "    1000M"), (99_999_999_999, "   99999M"),
    (100_000_000_000, "     100G"), (100_000_000_000_000, "     100T"),
])
def test_largenum(value, text):
    assert largenum(value) == text


def test_largenum_exact():
    assert largenum(12, exact=True) == "       12"
    assert largenum(123_456_789_012, exact=True) == " 123456789012"


def test_json_and_snapshot_round_trip():
    d, st = big_case()
    snap = json.loads(json.dumps(lvs_snapshot(d, st, "proxy")))
    d2, st2 = decode_snapshot(snap)
    assert d2 == d
    assert render_lvs(d2, st2, mode="stats") == render_lvs(d, st, mode="stats")
    j = lvs_json(d, st)
    svc = [s for s in j["services"] if s["key"] == "TCP 10.0.0.1:80"][0]
    assert [r["address"] for r in svc["reals"]] == ["127.0.0.1"] and svc["reals"][0]["fallback"]
    assert svc["down"] == ["10.0.1.1:80"]
    v6 = [s for s in j["services"] if s["ipv6"]][0]
    assert (v6["persistent"], v6["netmask"], v6["ops"]) == (30, "64", True)
    with pytest.raises(ValueError, match="not understood"):
        decode_snapshot({"stats": {}})
