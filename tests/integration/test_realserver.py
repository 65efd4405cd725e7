"""`hadirector realserver` in a real server's own network namespace: VIP on lo, ARP settings, undo."""

from __future__ import annotations

import os
import sys

from hdtest import need_root

VIP = "198.18.0.100"


def _hd(host, state_dir, *args, check=True):
    return host.run([sys.executable, "-m", "hadirector", "realserver", "--state-dir", state_dir, *args],
                    check=check)


def test_up_hides_the_vip_from_arp_and_down_restores(lab):
    need_root("ip", "ping")
    lan = lab.switch("lan")
    client, real = lab.host("client"), lab.host("real")
    client.connect(lan, "198.18.0.10/24")
    real.connect(lan, "198.18.0.11/24")
    state = os.path.join(lab.dir, "real-state")
    # a non-default value before, to see that down puts it back
    real.sysctl("net.ipv4.conf.all.arp_announce", 1)

    # the VIP on lo without the ARP settings: Linux answers ARP for it on eth0 (the "ARP problem")
    real.run(["ip", "addr", "add", f"{VIP}/32", "dev", "lo"])
    assert client.run(["ping", "-c", "1", "-W", "1", VIP], check=False).returncode == 0
    real.run(["ip", "addr", "del", f"{VIP}/32", "dev", "lo"])
    client.run(["ip", "neigh", "flush", "all"])

    assert _hd(real, state, "--vip", VIP, "status", check=False).returncode == 3
    out = _hd(real, state, "--vip", VIP, "up").stdout
    assert f"added {VIP}/32 to lo" in out
    addr = [a for link in real.addrs() for a in link["addr_info"] if a["local"] == VIP]
    assert addr and addr[0]["prefixlen"] == 32 and addr[0]["label"] == "lo:0"
    for d in ("all", "lo"):
        assert real.get_sysctl(f"net.ipv4.conf.{d}.arp_ignore") == "1"
        assert real.get_sysctl(f"net.ipv4.conf.{d}.arp_announce") == "2"
    assert _hd(real, state, "--vip", VIP, "status").returncode == 0
    # now nobody answers ARP for the VIP from the real
    assert client.run(["ping", "-c", "1", "-W", "1", VIP], check=False).returncode != 0
    # the real still accepts traffic for the VIP that is sent to its MAC (what DR does)
    real.http_server(port=80, identity="real")
    client.run(["ip", "neigh", "replace", VIP, "lladdr", real.mac("eth0"), "dev", "eth0"])
    assert client.http_get(VIP) == "real\n"

    # up twice is harmless and keeps the first saved values
    _hd(real, state, "--vip", VIP, "up")
    out = _hd(real, state, "--vip", VIP, "down").stdout
    assert f"removed {VIP} from lo" in out
    assert not real.has_address(VIP)
    assert real.get_sysctl("net.ipv4.conf.all.arp_announce") == "1"  # restored
    assert real.get_sysctl("net.ipv4.conf.all.arp_ignore") == "0"
    assert real.get_sysctl("net.ipv4.conf.lo.arp_ignore") == "0"
    assert not os.path.exists(os.path.join(state, "realserver.json"))


def test_several_vips_and_bad_input(lab):
    need_root("ip")
    h = lab.host("real")
    state = os.path.join(lab.dir, "st")
    _hd(h, state, "--vip", "198.18.0.100", "--vip", "198.18.0.101", "up")
    labels = {a["local"]: a.get("label") for link in h.addrs() for a in link["addr_info"]}
    assert labels["198.18.0.100"] == "lo:0" and labels["198.18.0.101"] == "lo:1"
    # taking one VIP down keeps the ARP settings the other needs
    _hd(h, state, "--vip", "198.18.0.101", "down")
    assert h.get_sysctl("net.ipv4.conf.all.arp_ignore") == "1"
    _hd(h, state, "--vip", "198.18.0.100", "down")
    assert h.get_sysctl("net.ipv4.conf.all.arp_ignore") == "0"
    bad = _hd(h, state, "--vip", "not-an-ip", "up", check=False)
    assert bad.returncode == 2 and "expected an IPv4 or IPv6 address" in bad.stderr  # a usage error (issue 13)
    nodev = _hd(h, state, "--vip", "198.18.0.100", "--dev", "nosuchdev", "up", check=False)
    assert nodev.returncode == 1 and "nosuchdev" in nodev.stderr
