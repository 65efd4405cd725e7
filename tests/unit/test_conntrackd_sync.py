"""config/sync.py (which conntrackd a configuration runs) and dataplane/conntrackd_conf.py (its
file), pure; the `hadirector check` rules for it (config/machine.py). conntrackd itself runs in
tests/integration/test_failover_nat.py."""

from __future__ import annotations

import pytest

from hadirector.config import load_config
from hadirector.config.machine import Machine, machine_problems
from hadirector.config.native import load_toml_text
from hadirector.config.sync import conntrackd_plan, nat_without_sync
from hadirector.dataplane.conntrackd_conf import ConntrackdConfError, Paths, render

BASE = """
[cluster]
nodes = ["alpha", "beta"]
[[cluster.links]]
kind = "ucast"
interface = "eth0"
peers = ["198.18.0.2", "198.18.0.3"]
[[cluster.links]]
kind = "ucast"
interface = "eth1"
peers = ["198.18.1.2", "198.18.1.3"]
[cluster.auth]
key = "k"
[[groups]]
name = "web"
preferred_node = "alpha"
[[groups.resources]]
kind = "vip"
address = "198.18.0.100"
[[groups.resources]]
kind = "balancer"
[balancer]
[[balancer.virtual]]
address = "198.18.0.100"
port = 80
[[balancer.virtual.reals]]
address = "198.18.1.11"
method = "{method}"
"""
PATHS = Paths(conf="/run/hd/conntrackd.conf", socket="/run/hd/conntrackd.ctl",
              lock="/run/hd/conntrackd.lock", log="/run/hd/conntrackd.log")


def cfg(method="masq", extra="", nodes=None):
    text = BASE.replace("{method}", method) + extra
    if nodes:
        text = text.replace('nodes = ["alpha", "beta"]', f"nodes = {nodes!r}".replace("'", '"'))
    return load_toml_text(text)


def test_on_by_default_for_nat_on_two_nodes_only():
    plan = conntrackd_plan(cfg())
    assert plan is not None and not plan.explicit
    # the first link with an interface, its ucast peers; the protocols and VIPs of the services
    assert (plan.interface, plan.peers, plan.port) == ("eth0", ("198.18.0.2", "198.18.0.3"), 3780)
    assert plan.protocols == ("TCP",) and plan.vips == ("198.18.0.100",)
    assert conntrackd_plan(cfg("gate")) is None  # direct routing: no conntrack (flow_sync's job)
    assert conntrackd_plan(cfg(nodes=["alpha"])) is None  # one director: nobody to sync to
    off = cfg(extra="[balancer.conntrackd]\nenabled = false\n")
    assert conntrackd_plan(off) is None and nat_without_sync(off)
    assert not nat_without_sync(cfg())
    on = conntrackd_plan(cfg("gate", "[balancer.conntrackd]\nenabled = true\n"))
    assert on is not None and on.explicit


def test_interface_picks_that_link_and_peers_override():
    plan = conntrackd_plan(cfg(extra='[balancer.conntrackd]\ninterface = "eth1"\n'))
    assert (plan.interface, plan.peers) == ("eth1", ("198.18.1.2", "198.18.1.3"))
    plan = conntrackd_plan(cfg(extra='[balancer.conntrackd]\ninterface = "sync0"\n'
                                     'peers = ["198.18.9.1", "198.18.9.2"]\nport = 3800\n'))
    assert (plan.interface, plan.peers, plan.port) == ("sync0", ("198.18.9.1", "198.18.9.2"), 3800)


def test_mixed_families_are_refused_when_read():
    from hadirector.config.errors import ConfigError
    serial = BASE.replace('kind = "ucast"\ninterface = "eth0"\npeers = ["198.18.0.2", "198.18.0.3"]\n'
                          '[[cluster.links]]\nkind = "ucast"\ninterface = "eth1"\n'
                          'peers = ["198.18.1.2", "198.18.1.3"]', 'kind = "serial"\ndevice = "/dev/ttyS0"')
    serial = serial.replace("{method}", "masq")
    assert conntrackd_plan(load_toml_text(serial)) is None  # by default: no link, no conntrackd
    with pytest.raises(ConfigError, match="balancer.conntrackd.interface: conntrackd needs a sync link"):
        load_toml_text(serial + "[balancer.conntrackd]\nenabled = true\n")
    with pytest.raises(ConfigError, match="balancer.conntrackd.peers: the sync peers mix IPv4 and IPv6"):
        cfg(extra='[balancer.conntrackd]\npeers = ["198.18.9.1", "2001:2::1"]\n')


def test_render_udp_between_two_directors():
    plan = conntrackd_plan(cfg())
    text = render(plan, ["127.0.0.1", "198.18.0.3", "198.18.1.3"], PATHS)
    # beta: its own address on the link, the other's as the destination
    assert "\tUDP {\n\t\tIPv4_address 198.18.0.3\n\t\tIPv4_Destination_Address 198.18.0.2\n" \
           "\t\tPort 3780\n\t\tInterface eth0\n" in text
    assert "Mode FTFW {\n\t\tDisableExternalCache no\n\t\tStartupResync yes\n" in text
    # our state directory for everything conntrackd writes
    for line in ("LockFile /run/hd/conntrackd.lock", "Path /run/hd/conntrackd.ctl",
                 "LogFile /run/hd/conntrackd.log", "Systemd no"):
        assert f"\t{line}\n" in text
    ignore = text.split("Address Ignore {")[1].split("}")[0].split()
    assert ignore == ["IPv4_address", "127.0.0.1", "IPv6_address", "::1", "IPv4_address", "198.18.0.100",
                      "IPv4_address", "198.18.0.3", "IPv4_address", "198.18.1.3"]
    assert "Protocol Accept {\n\t\t\tTCP\n\t\t}" in text
    assert text.count("{") == text.count("}")


def test_render_multicast_for_three_directors():
    c = cfg(nodes=["alpha", "beta", "gamma"],
            extra='[balancer.conntrackd]\npeers = ["198.18.0.2", "198.18.0.3", "198.18.0.4"]\n')
    text = render(conntrackd_plan(c), ["198.18.0.4"], PATHS)
    assert "\tMulticast {\n\t\tIPv4_address 225.0.0.50\n\t\tGroup 3780\n\t\tIPv4_interface 198.18.0.4\n" in text
    assert "UDP {" not in text


def test_render_refuses_what_cannot_work():
    plan = conntrackd_plan(cfg())
    with pytest.raises(ConntrackdConfError, match="none of the sync peers .* is an address of this node on eth0"):
        render(plan, ["198.18.7.7"], PATHS)
    blank = Paths(conf="c", socket="/my state/conntrackd.ctl", lock="/l", log="/g")
    with pytest.raises(ConntrackdConfError, match="cannot read the path '/my state/conntrackd.ctl'"):
        render(plan, ["198.18.0.2"], blank)
    long = Paths(conf="c", socket="/" + "x" * 120, lock="l", log="g")
    with pytest.raises(ConntrackdConfError, match="longer than 107 characters; use a shorter --state-dir"):
        render(plan, ["198.18.0.2"], long)


def _check(tmp_path, extra, root):
    f = tmp_path / "c.toml"
    f.write_text(BASE.replace("{method}", "masq") + extra)
    loaded = load_config(path=f, node="alpha")
    m = Machine("alpha", frozenset({"lo", "eth0", "eth1"}), (("eth0", "198.18.0.2/24"),), root=root)
    return [str(p) for p in machine_problems(loaded, m, True) if "conntrack" in str(p)]


def test_check_says_what_happens_to_nat_connections(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")
    empty = str(tmp_path / "root")  # a machine without conntrackd
    assert _check(tmp_path, "", empty) == [
        "balancer.conntrackd: warning: conntrackd is not installed (Debian package conntrackd): open NAT "
        "connections will not survive a failover"]
    assert _check(tmp_path, "[balancer.conntrackd]\nenabled = true\n", empty) == [
        "balancer.conntrackd: conntrackd is not installed (Debian package conntrackd): open NAT connections "
        "will not survive a failover; run refuses to start the balancer without it"]
    assert _check(tmp_path, "[balancer.conntrackd]\nenabled = false\n", empty) == [
        "balancer.conntrackd: warning: NAT (masq) services on several directors without conntrackd: open "
        "connections will not survive a failover"]
    fake = tmp_path / "fake"
    (fake / "usr/sbin").mkdir(parents=True)
    (fake / "usr/sbin/conntrackd").write_text("#!/bin/sh\n")
    (fake / "usr/sbin/conntrackd").chmod(0o755)
    assert _check(tmp_path, "", str(fake)) == []
    assert _check(tmp_path, '[balancer.conntrackd]\ninterface = "eth5"\n', str(fake)) == [
        "balancer.conntrackd.interface: conntrackd's sync interface eth5 does not exist on this machine "
        "(interfaces here: eth0, eth1)"]
