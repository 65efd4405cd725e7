"""Pure rules of the resource agents: registry, heartbeat's status text rule, exit code names,
VIP placement."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from hadirector.config.model import (BalancerResource, OcfResource, ScriptResource, SystemdResource,
                                     VipResource)
from hadirector.net.netlink import AddrInfo, LinkInfo
from hadirector.resources import base
from hadirector.resources.base import AgentContext, AgentError, agent_for, call_with_timeout
from hadirector.resources.ocf import ocf_environment, ocf_meaning
from hadirector.resources.script import lsb_meaning, status_text_says
from hadirector.resources.vip import choose_placement


def test_registry_has_one_agent_per_kind():
    reg = base.load_agents()
    for kind in ("vip", "script", "systemd", "ocf"):
        assert reg[kind].kind == kind
    models = [VipResource(address="198.18.0.1"), ScriptResource(name="x"),
              SystemdResource(unit="x.service"), OcfResource(agent="Dummy")]
    for m in models:
        assert agent_for(m).kind == m.kind


def test_unknown_kind_is_a_clear_error(monkeypatch):
    monkeypatch.delitem(base.REGISTRY, "balancer", raising=False)
    with pytest.raises(AgentError) as err:
        agent_for(BalancerResource())
    assert "no resource agent for kind 'balancer'" in str(err.value)
    assert "vip" in str(err.value)


def test_register_refuses_a_second_agent_for_a_kind():
    class Other(base.Agent):
        kind = "vip"

    with pytest.raises(TypeError):
        base.register(Other)


async def test_call_with_timeout_cancels_and_names_the_call():
    cancelled = asyncio.Event()

    async def slow():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(AgentError) as err:
        await call_with_timeout("x start", slow(), 50)
    assert err.value.timeout and err.value.transient and "x start timed out after 50 ms" in str(err.value)
    assert cancelled.is_set()
    assert await call_with_timeout("quick", asyncio.sleep(0, result=7), 1000) == 7


@pytest.mark.parametrize("text, verdict", [
    ("running", True), ("httpd (pid 1) is running...", True), ("Running OK", True),
    ("INFO:  Running OK", True), ("OK", True), ("all OK\n", True),
    ("not running", False), ("httpd is not running", False), ("NOT  running", False),
    ("Not currently\nrunning", False),  # shell `*` matches newlines too
    ("Not\ncurrently running", True),  # but "not" must be followed by a space
    ("notrunning", True),  # no space after "not": the pattern needs one, so "running" wins
    ("stopped", None), ("", None), ("RUNNING", None), ("ok", None),
])
def test_heartbeat_status_text_rule(text, verdict):
    assert status_text_says(text) is verdict
    # the oracle: the same `case` patterns as heartbeat's we_own_resource, run by /bin/sh
    script = ('case "$1" in *[Nn][Oo][Tt]\\ *[Rr]unning*) echo no;; *[Rr]unning*|*OK*) echo yes;; '
              '*) echo none;; esac')
    out = subprocess.run(["sh", "-c", script, "sh", text], capture_output=True, text=True).stdout.strip()
    assert out == {True: "yes", False: "no", None: "none"}[verdict]


def test_exit_code_names():
    assert lsb_meaning(0) == "success" and lsb_meaning(6) == "program is not configured"
    assert lsb_meaning(-9) == "killed by signal 9" and lsb_meaning(99) == "unknown exit code"
    assert ocf_meaning(7) == "not running" and ocf_meaning(5) == "not installed"


def test_ocf_environment_names():
    env = ocf_environment(OcfResource(agent="IPaddr2", params={"ip": "198.18.0.1", "cidr_netmask": "24"}),
                          "/opt/ocf")
    assert env["OCF_RESKEY_ip"] == "198.18.0.1" and env["OCF_RESKEY_cidr_netmask"] == "24"
    assert env["OCF_ROOT"] == "/opt/ocf" and env["OCF_FUNCTIONS_DIR"] == "/opt/ocf/lib/heartbeat"
    assert env["OCF_RESOURCE_TYPE"] == "IPaddr2" and env["OCF_RESOURCE_PROVIDER"] == "heartbeat"


# --------------------------------------------------------------------------- vip placement

LINKS = [LinkInfo(1, "lo", None, 0x9, "UNKNOWN"), LinkInfo(2, "eth0", "02:00:00:00:00:01", 0x1003, "UP"),
         LinkInfo(3, "eth1", "02:00:00:00:00:02", 0x1003, "UP")]
ADDRS = [AddrInfo(1, "127.0.0.1", 8, "lo", None, 2),
         AddrInfo(2, "198.18.0.2", 24, "eth0", "198.18.0.255", 2),
         AddrInfo(3, "198.18.0.130", 25, "eth1", "198.18.0.255", 2),
         AddrInfo(3, "2001:2::2", 64, None, None, 10)]


def place(**kw):
    return choose_placement(VipResource(**kw), LINKS, ADDRS)


def test_placement_picks_the_most_specific_subnet():
    p = place(address="198.18.0.200")  # in 198.18.0.0/24 (eth0) and 198.18.0.128/25 (eth1)
    assert (p.ifname, p.prefixlen, p.label, p.broadcast) == ("eth1", 25, "eth1:0", "198.18.0.255")
    p = place(address="198.18.0.100")
    assert (p.ifname, p.prefixlen, p.label) == ("eth0", 24, "eth0:0")


def test_placement_skips_used_labels_and_its_own_address():
    addrs = ADDRS + [AddrInfo(2, "198.18.0.50", 32, "eth0:0", None, 2),
                     AddrInfo(2, "198.18.0.100", 32, "eth0:1", None, 2)]  # the VIP itself, left behind
    p = choose_placement(VipResource(address="198.18.0.100"), LINKS, addrs)
    assert (p.ifname, p.prefixlen, p.label) == ("eth0", 24, "eth0:2")


def test_placement_with_interface_and_prefix():
    p = place(address="198.18.5.5", interface="eth1")
    assert (p.ifname, p.prefixlen, p.broadcast) == ("eth1", 32, None)
    p = place(address="198.18.0.100", interface="eth1", prefixlen=28, broadcast="198.18.0.111")
    assert (p.ifname, p.prefixlen, p.broadcast) == ("eth1", 28, "198.18.0.111")


def test_placement_of_ipv6_has_no_label():
    p = place(address="2001:2::100")
    assert (p.ifname, p.prefixlen, p.label, p.broadcast) == ("eth1", 64, None, None)


def test_placement_errors():
    with pytest.raises(AgentError, match="no interface has an address whose subnet holds it"):
        place(address="198.18.9.9")
    with pytest.raises(AgentError, match="interface eth9 does not exist"):
        place(address="198.18.0.9", interface="eth9")
    with pytest.raises(AgentError, match="must begin with the interface name"):
        place(address="198.18.0.9", label="web")
    with pytest.raises(AgentError, match="too long"):
        place(address="198.18.0.9", prefixlen=64)
    # the loopback's 127/8 never hosts a VIP
    with pytest.raises(AgentError):
        place(address="127.0.0.9")


def test_long_interface_names_get_no_label():
    links = [LinkInfo(2, "verylongname12", "02:00:00:00:00:01", 0x1003, "UP")]
    addrs = [AddrInfo(2, "198.18.0.2", 24, "verylongname12", None, 2)]
    p = choose_placement(VipResource(address="198.18.0.100"), links, addrs)
    assert p.label is None  # "verylongname12:0" would exceed the kernel's 15 characters


def test_context_defaults_follow_heartbeat():
    ctx = AgentContext()
    assert ctx.resource_dirs == ("/etc/ha.d/resource.d", "/etc/init.d")
    assert ctx.ocf_root == "/usr/lib/ocf" and ctx.netns is None
