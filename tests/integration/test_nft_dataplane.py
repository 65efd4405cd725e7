"""The nftables data plane in network namespaces: a client, a director, three reals running real
HTTP servers. NAT uses the two-arm layout (reals route back through the director), direct routing
the one-arm layout (reals hold the VIP on lo, prepared by `hadirector realserver`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from hadirector.balancer.state import build_desired
from hadirector.config.model import Balancer
from hadirector.dataplane.base import DataPlaneError
from hadirector.dataplane.nft import NftDataPlane
from hadirector.dataplane.nft_render import NftOptions
from hadirector.lab import VIP, balancer
from hdtest import async_wait_until, need_root

METHODS = ["masq", "gate"]


def make_lab(lab, method: str):
    need_root("ip", "nft")
    bl = balancer(lab, layout="two-arm" if method == "masq" else "one-arm", reals=3, http="python")
    if method == "gate":
        for r in bl.reals:
            r.run([sys.executable, "-m", "hadirector", "realserver", "--vip", VIP,
                   "--state-dir", os.path.join(lab.dir, r.name), "up"])
    return bl


def desired(bl, method: str, weights=(3, 1, 0), scheduler="wrr", health=None, **virtual):
    reals = [{"address": bl.real_addr[f"real{i + 1}"], "method": method, "weight": w}
             for i, w in enumerate(weights) if w is not None]
    v = {"address": VIP, "port": 80, "scheduler": scheduler, "reals": reals, **virtual}
    b = Balancer.model_validate({"virtual": [v]})
    return build_desired(b, health)


def load(bl, n=2000, c=20, source=None, **kw) -> dict:
    args = [sys.executable, "-m", "hadirector.lab.httpload", "--host", VIP, "-n", str(n), "-c", str(c),
            "--deadline", "60"]
    if source:
        args += ["--source", source]
    if kw.get("udp"):
        args += ["--udp", "--port", str(kw["port"])]
    out = bl.client.run(args, check=False, timeout=90)
    return json.loads(out.stdout)


class KeepAlive:
    """One HTTP/1.1 keep-alive connection from the client host (a socket in its namespace)."""

    def __init__(self, host, address=VIP, port=80):
        self.sock = host.tcp_connect(address, port, timeout=5)

    def get(self) -> str:
        self.sock.sendall(f"GET / HTTP/1.1\r\nHost: {VIP}\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        length = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0])
        while len(body) < length:
            body += self.sock.recv(4096)
        return body.decode().strip()

    def close(self):
        self.sock.close()


def ratio_ok(counts: dict, a: str, b: str, want: float, tol: float = 0.05) -> bool:
    return b in counts and abs(counts[a] / counts[b] - want) <= want * tol


@pytest.mark.parametrize("method", METHODS)
async def test_requests_follow_weights(lab, method):
    bl = make_lab(lab, method)
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        await dp.apply(desired(bl, method, weights=(3, 1, 0)))
        res = load(bl, n=2000, c=20)
        assert res["errors"] == 0 and res["ok"] == 2000, res  # every request answered
        counts = res["counts"]
        assert set(counts) == {"real1", "real2"}, counts  # weight 0: nothing to real3
        assert ratio_ok(counts, "real1", "real2", 3.0), counts
        await dp.refresh()
        st = dp.stats().service(f"TCP {VIP}:80")
        r1 = st.reals[(bl.real_addr["real1"], 80)]
        # `conns` counts scheduling decisions (new flows), as IPVS's conns counts new connection
        # entries, not connect() calls. The client's kernel may give a connection the source port
        # of an earlier one that the server closed first (the client keeps no TIME_WAIT then):
        # __inet_hash_connect walks the port range from a table_perturb slot hashed from the
        # addresses only, shared by every namespace, so other labs connecting 198.18.0.10 ->
        # VIP:80 at the same time (a parallel run) advance our walk and it wraps within 2000
        # connections (measured: 3 namespaces x 3000 connections each, ~7 % reused ports).
        # NAT: conntrack re-opens that tuple as a new entry (nf_conntrack_proto_tcp.c tcp_packet,
        # "Attempt to reopen a closed/aborted connection"), so every connection is a new decision.
        # Direct routing: the flow is still in the real's closing set (tcpfin_timeout) and its SYN
        # goes to the same real without one (IPVS does the same for a DR connection in FIN_WAIT
        # with the default conn_reuse_mode=1: ip_vs_core.c is_new_conn_expected). Distinct source
        # ports are therefore a lower bound, connections an upper one.
        if method == "masq":
            assert st.counters.conns == res["ok"], (st.counters.conns, res)
            assert r1.counters.conns == counts["real1"]
        else:
            assert res["flows"] <= st.counters.conns <= res["ok"], (st.counters.conns, res)
            assert r1.counters.conns <= counts["real1"]
        assert sum(r.counters.conns for r in st.reals.values()) == st.counters.conns
        assert r1.counters.inpkts >= 3 * counts["real1"]
        if method == "masq":
            assert r1.counters.outpkts >= 2 * counts["real1"]  # replies come back through us
        else:
            assert r1.counters.outpkts == 0  # direct routing: replies bypass the director
        # the reals see the client's own address (no SNAT configured)
        assert bl.client.http_get(VIP, path="/peer").splitlines()[1].startswith("198.18.0.10 ")
    finally:
        await dp.close()


@pytest.mark.parametrize("method", METHODS)
async def test_persistence_keeps_a_client_on_one_real(lab, method):
    bl = make_lab(lab, method)
    bl.client.add_address("198.18.0.20/24", "eth0")
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        await dp.apply(desired(bl, method, weights=(1, 1, 1), scheduler="rr", persistent=300))
        a = load(bl, n=60, c=4, source="198.18.0.10")
        b = load(bl, n=60, c=4, source="198.18.0.20")
        assert a["errors"] == b["errors"] == 0
        assert len(a["counts"]) == 1 and len(b["counts"]) == 1, (a, b)
        # rr: the second client network got the next real
        assert a["counts"] != b["counts"]
        # a re-apply (here: one more real added) keeps the templates
        await dp.apply(desired(bl, method, weights=(1, 1, 2), scheduler="rr", persistent=300))
        a2 = load(bl, n=30, c=3, source="198.18.0.10")
        assert a2["counts"].keys() == a["counts"].keys()
        await dp.refresh()
        st = dp.stats().service(f"TCP {VIP}:80")
        assert sum(r.persist for r in st.reals.values()) == 2
    finally:
        await dp.close()
    # with a /24 netmask both client addresses are one client network
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        await dp.apply(desired(bl, method, weights=(1, 1, 1), scheduler="rr", persistent=300,
                               netmask="255.255.255.0"))
        a = load(bl, n=30, c=3, source="198.18.0.10")
        b = load(bl, n=30, c=3, source="198.18.0.20")
        assert len(a["counts"]) == 1 and a["counts"].keys() == b["counts"].keys(), (a, b)
    finally:
        await dp.close()


@pytest.mark.parametrize("method", METHODS)
async def test_weight_zero_drains_without_breaking_open_connections(lab, method):
    bl = make_lab(lab, method)
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    conns = []
    try:
        await dp.apply(desired(bl, method, weights=(1, 1, 1), scheduler="rr"))
        conns = [KeepAlive(bl.client) for _ in range(3)]
        first = [c.get() for c in conns]
        assert sorted(first) == ["real1", "real2", "real3"]
        c1 = conns[first.index("real1")]
        # real1 quiesced (weight 0), then another apply with a new scheduler: the open
        # connection still reaches real1, new connections never do
        await dp.apply(desired(bl, method, weights=(0, 1, 1), scheduler="rr"))
        assert c1.get() == "real1"
        res = load(bl, n=200, c=10)
        assert res["errors"] == 0 and "real1" not in res["counts"], res
        await dp.apply(desired(bl, method, weights=(0, 2, 1), scheduler="wrr"))
        assert [c.get() for c in conns] == first
        await dp.refresh()
        st = dp.stats().service(f"TCP {VIP}:80")
        assert st.reals[(bl.real_addr["real1"], 80)].active >= 1
        assert st.reals[(bl.real_addr["real1"], 80)].counters.conns == 1
    finally:
        for c in conns:
            c.close()
        await dp.close()


@pytest.mark.parametrize("method", METHODS)
async def test_fallback_answers_when_no_real_is_available(lab, method):
    bl = make_lab(lab, method)
    # the sorry server runs on the director itself (ldirectord's fallback=127.0.0.1:...)
    bl.director.http_server(port=8080, identity="sorry")
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    key = f"TCP {VIP}:80"
    health = {(key, bl.real_addr[f"real{i}"], 80): False for i in (1, 2, 3)}
    try:
        fb = {"address": "127.0.0.1", "port": 8080}
        await dp.apply(desired(bl, method, weights=(1, 1, 1), fallback=fb))
        assert load(bl, n=30, c=3)["counts"].keys() == {"real1", "real2", "real3"}
        await dp.apply(desired(bl, method, weights=(1, 1, 1), fallback=fb, health=health))
        res = load(bl, n=30, c=3)
        assert res["counts"] == {"sorry": 30}, res
        # a real comes back: the fallback is withdrawn
        health[(key, bl.real_addr["real2"], 80)] = True
        await dp.apply(desired(bl, method, weights=(1, 1, 1), fallback=fb, health=health))
        assert load(bl, n=30, c=3)["counts"] == {"real2": 30}
    finally:
        await dp.close()


async def test_remote_fallback_server_masq(lab):
    bl = make_lab(lab, "masq")
    sorry = lab.host("sorry")
    sorry.connect(bl.back, "198.18.1.50/24")
    sorry.route("198.18.0.0/24", via="198.18.1.1")
    sorry.http_server(port=80, identity="sorry")
    key = f"TCP {VIP}:80"
    health = {(key, bl.real_addr[f"real{i}"], 80): False for i in (1, 2, 3)}
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        await dp.apply(desired(bl, "masq", weights=(1, 1, 1), health=health,
                               fallback={"address": "198.18.1.50", "method": "masq"}))
        assert load(bl, n=20, c=2)["counts"] == {"sorry": 20}
    finally:
        await dp.close()


async def test_close_removes_only_our_tables(lab):
    bl = make_lab(lab, "gate")
    d = bl.director
    d.run(["nft", "add table ip keepme; add chain ip keepme c; add rule ip keepme c counter; "
                  "add table ip hadirector2; add table netdev other_eth0"])
    before = json.loads(d.run(["nft", "-j", "list", "ruleset"]).stdout)
    dp = NftDataPlane(netns=d.netns, stats_interval=0)
    await dp.apply(desired(bl, "gate", weights=(1, 1, 1)))
    tables = {(o["table"]["family"], o["table"]["name"])
              for o in json.loads(d.run(["nft", "-j", "list", "tables"]).stdout)["nftables"] if "table" in o}
    assert ("netdev", "hadirector_eth0") in tables
    await dp.close()
    after = json.loads(d.run(["nft", "-j", "list", "ruleset"]).stdout)
    assert after == before
    assert not any(o.get("table", {}).get("name", "").startswith("hadirector_")
                   for o in after["nftables"])


async def test_apply_is_idempotent_and_errors_name_the_service(lab):
    bl = make_lab(lab, "masq")
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        d1 = desired(bl, "masq", weights=(1, 2, 3))
        await dp.apply(d1)
        n = dp.applies
        await dp.apply(d1)
        assert dp.applies == n  # nothing changed: no transaction
        b = Balancer.model_validate({"virtual": [{"address": VIP, "port": 80, "reals": [
            {"address": bl.real_addr["real1"], "method": "ipip"}]}]})
        with pytest.raises(DataPlaneError, match=rf"TCP {VIP}:80: .*ipip"):
            await dp.apply(build_desired(b))
        # the failed apply left the previous ruleset in place
        assert load(bl, n=60, c=6)["counts"] == {"real1": 10, "real2": 20, "real3": 30}
    finally:
        await dp.close()


def _comparable(ruleset: list[dict]) -> tuple:
    """A listing without what differs between two kernels holding the same ruleset: handles,
    and the order of objects (rules keep their order within a chain)."""
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k != "handle"}
        return [strip(v) for v in o] if isinstance(o, list) else o
    rules: dict[str, list] = {}
    others = []
    for o in map(strip, ruleset):
        if "rule" in o:
            rules.setdefault(o["rule"]["chain"], []).append(json.dumps(o, sort_keys=True))
        else:
            others.append(json.dumps(o, sort_keys=True))
    return sorted(others), rules


@pytest.mark.parametrize("method", METHODS)
async def test_applies_leave_the_ruleset_a_fresh_install_makes(lab, method):
    """Each apply after the first is planned from the last one and refills only the chains that
    changed: after a run of changes the kernel holds what one install of the last state gives."""
    bl = make_lab(lab, method)
    key = lambda i: (f"TCP {VIP}:80", bl.real_addr[f"real{i}"], 80)  # noqa: E731
    states = [desired(bl, method, weights=(1, 1, 1)),
              desired(bl, method, weights=(1, 1, 1), health={key(1): False}),
              desired(bl, method, weights=(2, 1, 1)),
              desired(bl, method, weights=(2, 1, None)),
              desired(bl, method, weights=(1, 1, 1), scheduler="rr"),
              desired(bl, method, weights=(1, 3, 1), scheduler="rr", persistent=300),
              desired(bl, method, weights=(1, 3, 1), scheduler="rr", persistent=600),
              desired(bl, method, weights=(1, 3, 1), scheduler="wrr", health={key(2): False})]
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        for st in states:
            await dp.apply(st)
        assert dp.applies == len(states) and dp.replans == 0
        got = _comparable(dp.ruleset())
        assert load(bl, n=40, c=4)["counts"] == {"real1": 20, "real3": 20}  # real2 failed
    finally:
        await dp.close()
    fresh = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        await fresh.apply(states[-1])
        assert got == _comparable(fresh.ruleset())
    finally:
        await fresh.close()


async def test_a_chain_deleted_behind_our_back_is_put_back(lab):
    """An apply plans from the tables it installed last; when someone changed them the kernel
    refuses that plan and the apply plans again from a listing."""
    bl = make_lab(lab, "masq")
    d = bl.director
    dp = NftDataPlane(netns=d.netns, stats_interval=0)
    try:
        await dp.apply(desired(bl, "masq", weights=(1, 1, 1)))
        chain = next(o["chain"]["name"] for o in dp.ruleset()
                     if "chain" in o and o["chain"]["name"].startswith("real_"))
        d.run(["nft", f"flush table ip hadirector; delete chain ip hadirector {chain}"])
        n = dp.applies
        await dp.apply(desired(bl, "masq", weights=(1, 2, 3)))
        assert dp.applies == n + 1 and dp.replans == 1
        assert load(bl, n=60, c=6)["counts"] == {"real1": 10, "real2": 20, "real3": 30}
    finally:
        await dp.close()


async def test_gate_real_behind_a_router_is_refused(lab):
    bl = make_lab(lab, "masq")  # two-arm: from the director the reals are on eth1, but add a far one
    bl.director.route("198.18.2.0/24", via="198.18.1.11")
    b = Balancer.model_validate({"virtual": [{"address": VIP, "port": 80, "reals": [
        {"address": "198.18.2.5", "method": "gate"}]}]})
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        with pytest.raises(DataPlaneError, match="directly connected"):
            await dp.apply(build_desired(b))
    finally:
        await dp.close()


@pytest.mark.parametrize("method", METHODS)
async def test_udp_service(lab, method):
    bl = make_lab(lab, method)
    # with direct routing the echo must answer from the VIP: bind it (an unbound UDP reply would
    # take the real's own address as source, as a DNS server bound to 0.0.0.0 would)
    bind = VIP if method == "gate" else "0.0.0.0"
    for r in bl.reals:
        r.python("hadirector.lab.httpd", "--port", "8081", "--bind", bind, "--identity", r.name,
                 "--udp-echo", "53")
    # checktype on: the reals are up and never checked (`off` would install none: ldirectord
    # _check_real activates no real with it)
    b = Balancer.model_validate({"virtual": [{"address": VIP, "port": 53, "protocol": "udp", "scheduler": "rr",
                                              "checktype": "on", "reals": [
        {"address": bl.real_addr[f"real{i}"], "method": method} for i in (1, 2, 3)]}]})
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        await dp.apply(build_desired(b))
        for r in bl.reals:  # the echo servers are up once their TCP side accepts
            r.wait_tcp(VIP if method == "gate" else "127.0.0.1", 8081)
        res = load(bl, n=300, c=6, udp=True, port=53)
        assert res["errors"] == 0, res
        # each datagram comes from a fresh socket; a reused source port follows its earlier flow
        # (conntrack / flow set), so rr is exact only up to those
        assert res["counts"].keys() == {"real1", "real2", "real3"}, res
        assert all(90 <= n <= 110 for n in res["counts"].values()), res
    finally:
        await dp.close()


async def test_fwmark_service_masq(lab):
    bl = make_lab(lab, "masq")
    # the administrator marks the traffic (mangle priority, before nat prerouting)
    bl.director.run(["nft", "add table ip mangle; add chain ip mangle pre { type filter hook prerouting "
                            "priority mangle; }; add rule ip mangle pre ip daddr 198.18.0.100 tcp dport 80 "
                            "meta mark set 7"])
    b = Balancer.model_validate({"virtual": [{"fwmark": 7, "scheduler": "wrr", "reals": [
        {"address": bl.real_addr["real1"], "method": "masq", "weight": 1},
        {"address": bl.real_addr["real3"], "method": "masq", "weight": 2}]}]})
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        await dp.apply(build_desired(b))
        res = load(bl, n=300, c=6)
        assert res["counts"] == {"real1": 100, "real3": 200}, res
    finally:
        await dp.close()


@pytest.mark.parametrize("method", METHODS)
async def test_source_hashing_is_sticky_per_client(lab, method):
    bl = make_lab(lab, method)
    for i in range(20, 30):
        bl.client.add_address(f"198.18.0.{i}/24", "eth0")
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0)
    try:
        await dp.apply(desired(bl, method, weights=(1, 1, 1), scheduler="sh"))
        seen = set()
        for i in range(20, 30):
            res = load(bl, n=12, c=3, source=f"198.18.0.{i}")
            assert res["errors"] == 0 and len(res["counts"]) == 1, res
            seen |= res["counts"].keys()
        assert len(seen) >= 2  # ten clients do not all hash to one real
    finally:
        await dp.close()


@pytest.mark.parametrize("method", METHODS)
async def test_wlc_steers_new_connections_away_from_the_busy_real(lab, method):
    bl = make_lab(lab, method)
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0.2)
    conns = []
    try:
        # only real1 first: 12 long-lived connections land on it
        await dp.apply(desired(bl, method, weights=(1, None, None), scheduler="wlc"))
        conns = [KeepAlive(bl.client) for _ in range(12)]
        assert {c.get() for c in conns} == {"real1"}
        await dp.apply(desired(bl, method, weights=(1, 1, 1), scheduler="wlc"))
        # wait (bounded) until a measurement turned the counts into weights
        def real1_active():
            r1 = dp.stats().service(f"TCP {VIP}:80").reals.get((bl.real_addr["real1"], 80))
            return r1.active if r1 else None
        await async_wait_until(lambda: (real1_active() or 0) >= 12, 5, 0.1,
                               lambda: f"real1's 12 open connections measured (active {real1_active()})")
        await asyncio.sleep(0.5)
        res = load(bl, n=20, c=1)
        assert res["errors"] == 0 and "real1" not in res["counts"], res
        assert [c.get() for c in conns] == ["real1"] * 12
    finally:
        for c in conns:
            c.close()
        await dp.close()


async def test_snat_masquerade_one_arm(lab):
    """NAT on one LAN: without SNAT the reals would answer the client directly; with masquerade the
    replies come back through the director and the reals see the director's address."""
    need_root("ip", "nft")
    bl = balancer(lab, layout="one-arm", reals=3, http="python")
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0, options=NftOptions(snat="masquerade"))
    try:
        await dp.apply(desired(bl, "masq", weights=(1, 1, 0)))
        res = load(bl, n=100, c=5)
        assert res["counts"] == {"real1": 50, "real2": 50}, res
        assert bl.client.http_get(VIP, path="/peer").splitlines()[1].startswith("198.18.0.2 ")
    finally:
        await dp.close()


async def test_gate_real_without_arp_answer_is_left_out_until_it_answers(lab):
    bl = make_lab(lab, "gate")
    reals = [{"address": bl.real_addr["real1"], "method": "gate"},
             {"address": bl.real_addr["real2"], "method": "gate"},
             {"address": "198.18.0.99", "method": "gate"}]  # nobody there yet
    b = Balancer.model_validate({"virtual": [{"address": VIP, "port": 80, "scheduler": "rr", "reals": reals}]})
    dp = NftDataPlane(netns=bl.director.netns, stats_interval=0.3, resolve_timeout=0.5)
    try:
        await dp.apply(build_desired(b))
        res = load(bl, n=60, c=3)
        assert res["errors"] == 0 and res["counts"] == {"real1": 30, "real2": 30}, res
        # the server comes up: the background task resolves it and puts it in
        late = lab.host("late")
        late.connect(bl.front, "198.18.0.99/24")
        late.run([sys.executable, "-m", "hadirector", "realserver", "--vip", VIP,
                  "--state-dir", os.path.join(lab.dir, "late"), "up"])
        late.http_server(port=80, identity="late")
        await async_wait_until(lambda: not dp._unresolved, 5, 0.1,
                               lambda: f"the late real resolved (unresolved: {dp._unresolved})")
        res = load(bl, n=60, c=3)
        assert res["counts"] == {"real1": 20, "real2": 20, "late": 20}, res
    finally:
        await dp.close()


async def test_purge_removes_leftovers_of_a_crashed_run(lab):
    bl = make_lab(lab, "gate")
    d = bl.director
    d.run(["nft", "add table ip keepme"])
    dp = NftDataPlane(netns=d.netns, stats_interval=0)
    # reals failed but kept at weight 0 (quiescent), a local fallback: both of our tables exist
    down = {(f"TCP {VIP}:80", bl.real_addr[f"real{i}"], 80): False for i in (1, 2, 3)}
    await dp.apply(desired(bl, "gate", weights=(1, 1, 1), quiescent=True, health=down,
                           fallback={"address": "127.0.0.1", "port": 8080}))
    # the process "dies" without close(): a new one purges before starting
    gone = NftDataPlane.purge(netns=d.netns)
    assert set(gone) == {("ip", "hadirector"), ("netdev", "hadirector_eth0")}
    tables = {(o["table"]["family"], o["table"]["name"])
              for o in json.loads(d.run(["nft", "-j", "list", "tables"]).stdout)["nftables"] if "table" in o}
    assert tables == {("ip", "keepme")}
    # a fresh data plane installs again from nothing
    dp2 = NftDataPlane(netns=d.netns, stats_interval=0)
    try:
        await dp2.apply(desired(bl, "gate", weights=(1, 1, 0)))
        assert load(bl, n=20, c=2)["counts"] == {"real1": 10, "real2": 10}
    finally:
        await dp2.close()
        await dp.close()
