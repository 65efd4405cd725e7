"""The network-namespace lab itself: hosts, bridges, processes, cleanup."""

from __future__ import annotations

import json
import os
import sys

import pytest

from hadirector.lab import Lab, LabError, balancer, director_pair
from hdtest import need_root


def _netns_names() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def test_hosts_on_a_bridge_talk_and_cleanup_removes_everything():
    need_root("ip", "ping")
    with Lab() as lab:
        lan = lab.switch("lan")
        a, b = lab.host("a"), lab.host("b")
        ia = a.connect(lan, "198.18.0.1/24")
        ib = b.connect(lan, "198.18.0.2/24")
        ours = {h.netns for h in lab.hosts.values()} | {lab.switch_netns}
        assert ours <= _netns_names()
        a.run(["ping", "-c", "1", "-W", "2", "198.18.0.2"])
        # the neighbour table of a now holds b's MAC, as ip -j neigh reports it
        assert a.neigh_mac("198.18.0.2") == ib.mac
        assert b.has_address("198.18.0.2") and not a.has_address("198.18.0.2")
        # no route out of the lab: only the connected /24
        routes = json.loads(a.run(["ip", "-j", "route"]).stdout)
        assert [r["dst"] for r in routes] == ["198.18.0.0/24"]
        proc = b.spawn(["sleep", "300"])
        assert proc.alive()
        # unplugging the cable cuts traffic
        ia.set_up(False)
        assert a.run(["ping", "-c", "1", "-W", "1", "198.18.0.2"], check=False).returncode != 0
        ia.set_up(True)
    assert not proc.alive()
    assert not (ours & _netns_names())
    # the root namespace got no interface of ours
    assert not any(n.startswith(lab.prefix) for n in os.listdir("/sys/class/net"))


def test_cleanup_happens_when_the_body_fails():
    need_root("ip")
    with pytest.raises(ZeroDivisionError):
        with Lab() as lab:
            h = lab.host("x")
            p = h.spawn(["sleep", "300"])
            names = {h.netns}
            1 / 0
    assert not p.alive()
    assert not (names & _netns_names())


def test_refuses_addresses_outside_the_lab_range(lab):
    lan = lab.switch("lan")
    h = lab.host("h")
    with pytest.raises(LabError, match="198.18.0.0/15"):
        h.connect(lan, "10.0.0.1/24")
    with pytest.raises(LabError, match="leaves the lab"):
        h.route("0.0.0.0/0", via="198.18.0.1")


def test_sockets_made_in_a_namespace_reach_its_servers(lab):
    lan = lab.switch("lan")
    a, b = lab.host("a"), lab.host("b")
    a.connect(lan, "198.18.0.1/24")
    b.connect(lan, "198.18.0.2/24")
    b.http_server(port=8080, identity="bee")
    assert a.http_get("198.18.0.2", 8080) == "bee\n"
    body = a.http_get("198.18.0.2", 8080, "/peer")
    assert body.splitlines()[1].split()[0] == "198.18.0.1"
    # the socket was made in a's namespace: its source address is a's
    s = a.tcp_connect("198.18.0.2", 8080)
    assert s.getsockname()[0] == "198.18.0.1"
    s.close()
    # sysctls are per namespace
    a.sysctl("net.ipv4.conf.all.arp_ignore", 1)
    assert a.get_sysctl("net.ipv4.conf.all.arp_ignore") == "1"
    assert b.get_sysctl("net.ipv4.conf.all.arp_ignore") == "0"


def test_director_pair_preset(lab):
    dp = director_pair(lab, hb_link=True)
    dp.client.run(["ping", "-c", "1", "-W", "2", "198.18.0.2"])
    dp.a.run(["ping", "-c", "1", "-W", "2", "198.18.1.3"])
    assert dp.holders() == []
    dp.a.add_address(f"{dp.vip}/24", "eth0", label="eth0:0")
    assert dp.holders() == ["dir-a"]
    dp.client.run(["ping", "-c", "1", "-W", "2", dp.vip])


def test_balancer_preset_and_load_client(lab):
    bl = balancer(lab, layout="two-arm", reals=3, http="python")
    for r in bl.reals:
        assert bl.client.http_get(bl.real_addr[r.name]) == f"{r.name}\n"
    out = bl.client.run([sys.executable, "-m", "hadirector.lab.httpload", "--host",
                         bl.real_addr["real2"], "-n", "50", "-c", "5"])
    res = json.loads(out.stdout)
    assert res == {**res, "counts": {"real2": 50}, "errors": 0}
    # the reals see the client's own address (routed, not translated)
    assert bl.client.http_get(bl.real_addr["real1"], path="/peer").splitlines()[1].startswith("198.18.0.10 ")


def test_nginx_real(lab):
    need_root("nginx")
    lan = lab.switch("lan")
    a, b = lab.host("a"), lab.host("b")
    a.connect(lan, "198.18.0.1/24")
    b.connect(lan, "198.18.0.2/24")
    p = b.http_server(port=80, identity="ngx", kind="nginx")
    assert a.http_get("198.18.0.2") == "ngx\n"
    p.stop()
    assert not p.alive()


def test_lab_command_up_and_down():
    need_root("ip")
    import subprocess
    name = f"t{os.getpid() % 10_000_000}"
    hd = [sys.executable, "-m", "hadirector", "lab"]
    up = subprocess.run(hd + ["up", "--name", name, "--layout", "one-arm", "--reals", "2"],
                        capture_output=True, text=True, timeout=120)
    try:
        assert up.returncode == 0, up.stderr
        ns = f"hdl-{name}-client"
        assert ns in _netns_names() and f"hdl-{name}-real2" in _netns_names()
        assert "real1" in up.stdout and "198.18.0.11" in up.stdout
        # the lab outlived the command: its HTTP servers still answer
        got = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-m", "3", "http://198.18.0.12/"],
                             capture_output=True, text=True, timeout=10)
        assert got.stdout == "real2\n"
        listed = subprocess.run(hd + ["list"], capture_output=True, text=True, timeout=30).stdout
        assert f"{name}: " in listed
        again = subprocess.run(hd + ["up", "--name", name], capture_output=True, text=True, timeout=30)
        assert again.returncode == 1 and "already up" in again.stderr
    finally:
        down = subprocess.run(hd + ["down", "--name", name], capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert not any(n.startswith(f"hdl-{name}-") for n in _netns_names())
