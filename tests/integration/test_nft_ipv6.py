"""The nftables data plane with IPv6 services (ip6 table for NAT, ip6 rules at netdev ingress for
direct routing), in namespaces with addresses from 2001:2::/48 (RFC 5180 benchmarking)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from hadirector.balancer.state import build_desired
from hadirector.config.model import Balancer
from hadirector.dataplane.nft import NftDataPlane
from hdtest import need_root

VIP6 = "2001:2::100"


@pytest.mark.parametrize("method", ["masq", "gate"])
async def test_ipv6_service(lab, method):
    need_root("ip", "nft")
    front = lab.switch("front")
    client, director = lab.host("client"), lab.host("director")
    client.connect(front, "2001:2::10/64")
    director.connect(front, "2001:2::2/64")
    director.add_address(f"{VIP6}/128", "eth0")
    director.enable_forwarding()
    reals = [lab.host(f"real{i}") for i in (1, 2)]
    if method == "masq":
        back = lab.switch("back")
        director.connect(back, "2001:2:0:1::1/64")
        addrs = ["2001:2:0:1::11", "2001:2:0:1::12"]
        for r, a in zip(reals, addrs):
            r.connect(back, f"{a}/64")
            r.run(["ip", "-6", "route", "add", "2001:2::/64", "via", "2001:2:0:1::1"])
    else:
        addrs = ["2001:2::11", "2001:2::12"]
        for r, a in zip(reals, addrs):
            r.connect(front, f"{a}/64")
            r.run([sys.executable, "-m", "hadirector", "realserver", "--vip", VIP6,
                   "--state-dir", os.path.join(lab.dir, r.name), "up"])
    for r in reals:
        r.http_server(port=80, identity=r.name, bind="::")
    b = Balancer.model_validate({"virtual": [{"address": VIP6, "port": 80, "scheduler": "wrr", "reals": [
        {"address": addrs[0], "method": method, "weight": 2}, {"address": addrs[1], "method": method}]}]})
    dp = NftDataPlane(netns=director.netns, stats_interval=0)
    try:
        await dp.apply(build_desired(b))
        out = client.run([sys.executable, "-m", "hadirector.lab.httpload", "--host", VIP6, "-n", "300",
                          "-c", "6"], check=False)
        res = json.loads(out.stdout)
        assert res["errors"] == 0 and res["counts"] == {"real1": 200, "real2": 100}, res
        fam = "ip6" if method == "masq" else "netdev"
        tables = {(o["table"]["family"], o["table"]["name"]) for o in
                  json.loads(director.run(["nft", "-j", "list", "tables"]).stdout)["nftables"] if "table" in o}
        assert any(f == fam and n.startswith("hadirector") for f, n in tables)
        await dp.refresh()
        st = dp.stats().service(f"TCP [{VIP6}]:80")
        assert st.counters.conns == 300
    finally:
        await dp.close()
