"""The vip agent in network namespaces: address with label, removal, and gratuitous ARP / unsolicited
neighbour advertisements proven by an observer's neighbour table.

Linux updates an *existing* neighbour entry from a gratuitous ARP (arp_process: `is_garp` forces
the override) but creates a new one only when arp_accept is set; the tests use both cases. Each
move is preceded by a control: the same move without announcements leaves the observer's entry on
the old MAC, so the change really comes from our packets.
"""

from __future__ import annotations

import asyncio

import pytest

from hadirector.config.model import VipResource
from hadirector.resources.base import AgentContext, AgentError, agent_for
from hdtest import async_wait_until, need_root

VIP = "198.18.0.100"
VIP6 = "2001:2::100"


@pytest.fixture
def hosts(lab):  # noqa: F811
    need_root("ip", "ping")
    lan = lab.switch("lan")
    obs, a, b = lab.host("obs"), lab.host("a"), lab.host("b")
    obs.connect(lan, "198.18.0.10/24", "2001:2::10/64")
    a.connect(lan, "198.18.0.2/24", "2001:2::2/64")
    b.connect(lan, "198.18.0.3/24", "2001:2::3/64")
    return obs, a, b


def vip_agent(host, address=VIP, **kw):
    return agent_for(VipResource(address=address, **kw), AgentContext(netns=host.netns))


def addr_entry(host, address):
    for link in host.addrs():
        for a in link.get("addr_info", []):
            if a.get("local") == address:
                return link["ifname"], a
    return None


async def wait_neigh(host, address, mac, timeout=5.0):
    """Poll the host's neighbour table (bounded) until `address` maps to `mac`."""
    await async_wait_until(lambda: host.neigh_mac(address) == mac, timeout, 0.05,
                           lambda: f"{host.name}'s neighbour entry {address} -> {mac} (it shows "
                                   f"{host.neigh_mac(address)})")


async def test_vip_is_added_with_a_label_and_removed(hosts):
    obs, a, b = hosts
    agent = vip_agent(a)
    assert await agent.monitor() is False
    await agent.start()
    ifname, entry = addr_entry(a, VIP)
    assert ifname == "eth0"
    assert entry["prefixlen"] == 24  # from 198.18.0.2/24 on eth0
    assert entry["label"] == "eth0:0"
    assert entry["broadcast"] == "198.18.0.255"
    assert await agent.monitor() is True
    assert agent.status()["interface"] == "eth0"
    # a second VIP takes the next free alias label, as heartbeat's IPaddr did
    second = vip_agent(a, "198.18.0.101")
    await second.start()
    assert addr_entry(a, "198.18.0.101")[1]["label"] == "eth0:1"
    # starting again is harmless
    await agent.start()
    assert addr_entry(a, VIP) is not None
    await agent.stop()
    assert addr_entry(a, VIP) is None
    assert await agent.monitor() is False
    await agent.stop()  # stopping a stopped VIP succeeds
    await second.stop()
    await agent.close()
    await second.close()
    # b never saw any of it
    assert addr_entry(b, VIP) is None


async def test_vip_placement_rules(hosts):
    obs, a, b = hosts
    # explicit interface, no subnet on it holds the address: /32
    other = vip_agent(a, "198.18.7.7", interface="eth0", label="eth0:web", garp_count=0)
    await other.start()
    ifname, entry = addr_entry(a, "198.18.7.7")
    assert (ifname, entry["prefixlen"], entry["label"]) == ("eth0", 32, "eth0:web")
    await other.stop()
    assert addr_entry(a, "198.18.7.7") is None
    # no interface's subnet holds it and none was named: a clear, fatal error
    lost = vip_agent(a, "198.18.9.9")
    with pytest.raises(AgentError) as err:
        await lost.start()
    assert "no interface" in str(err.value) and not err.value.transient
    # a missing interface is named in the error
    with pytest.raises(AgentError) as err:
        await vip_agent(a, VIP, interface="eth7").start()
    assert "eth7" in str(err.value)
    # a label that does not begin with the interface name is refused before the kernel sees it
    with pytest.raises(AgentError) as err:
        await vip_agent(a, VIP, label="web:0").start()
    assert "must begin with the interface name" in str(err.value)
    assert addr_entry(a, VIP) is None


async def test_stop_removes_a_vip_left_behind(hosts):
    """A crash leaves the VIP with a prefix the agent did not choose; stop still removes it."""
    obs, a, b = hosts
    a.add_address(f"{VIP}/32", "eth0")
    agent = vip_agent(a)
    assert await agent.monitor() is True  # never started here, but it is present
    await agent.stop()
    assert addr_entry(a, VIP) is None


async def test_gratuitous_arp_creates_the_entry_when_arp_accept_is_set(hosts):
    obs, a, b = hosts
    obs.sysctl("net.ipv4.conf.eth0.arp_accept", 1)
    assert obs.neigh_mac(VIP) is None
    agent = vip_agent(a, garp_count=3, garp_interval="100ms")
    await agent.start()
    try:
        # obs never sent a packet to the VIP: only our announcement can have created this entry
        await wait_neigh(obs, VIP, a.mac("eth0"))
    finally:
        await agent.stop()
        await agent.close()
    assert agent.garp.sent >= 1 and agent.garp.errors == 0


async def _move_and_check(obs, a, b, address, ping_cmd):
    """Holder a -> b, first without announcements (control), then with them."""
    mac_a, mac_b = a.mac("eth0"), b.mac("eth0")
    on_a = vip_agent(a, address, garp_count=2, garp_interval="100ms")
    await on_a.start()
    obs.run(ping_cmd + [address])  # the observer resolves the VIP the ordinary way
    assert obs.neigh_mac(address) == mac_a
    await on_a.stop()

    silent_b = vip_agent(b, address, garp_count=0)
    await silent_b.start()
    await asyncio.sleep(1.5)
    assert obs.neigh_mac(address) == mac_a, "the entry moved without any announcement"
    await silent_b.stop()

    on_b = vip_agent(b, address, garp_count=5, garp_interval="200ms")
    await on_b.start()
    try:
        await wait_neigh(obs, address, mac_b)
    finally:
        await on_b.stop()
        await on_b.close()
    assert on_b.garp.sent >= 1 and on_b.garp.errors == 0
    # and back again to a
    back = vip_agent(a, address, garp_count=5, garp_interval="200ms")
    await back.start()
    try:
        await wait_neigh(obs, address, mac_a)
    finally:
        await back.stop()
        await back.close()


async def test_gratuitous_arp_moves_an_existing_entry_to_the_new_holder(hosts):
    obs, a, b = hosts
    assert obs.get_sysctl("net.ipv4.conf.eth0.arp_accept") == "0"  # the default: update only
    await _move_and_check(obs, a, b, VIP, ["ping", "-c", "1", "-W", "2"])


async def test_unsolicited_neighbour_advertisement_moves_an_ipv6_entry(hosts):
    obs, a, b = hosts
    await _move_and_check(obs, a, b, VIP6, ["ping", "-6", "-c", "1", "-W", "2"])


async def test_announcements_as_seen_on_the_wire(hosts):
    """An observer's packet socket sees, per round, an ARP request (target MAC zero) and an ARP
    reply (target MAC = sender), both with sender and target IP = the VIP; garp_refresh adds one
    round every interval while the VIP is held, and stop ends it."""
    import socket
    import struct

    obs, a, b = hosts
    sniff = obs.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    sniff.bind(("eth0", 0x0806))  # CPython applies htons to the tuple's protocol itself
    sniff.setblocking(False)
    mac_a = bytes.fromhex(a.mac("eth0").replace(":", ""))
    vip = socket.inet_aton(VIP)

    def drain():
        frames = []
        while True:
            try:
                frames.append(sniff.recv(2048))
            except BlockingIOError:
                return frames

    def ours(frames):
        out = []
        for f in frames:
            op = struct.unpack("!H", f[20:22])[0]
            sha, spa, tha, tpa = f[22:28], f[28:32], f[32:38], f[38:42]
            if spa == vip and tpa == vip:
                assert f[:6] == b"\xff" * 6 and sha == mac_a
                assert tha == (b"\x00" * 6 if op == 1 else mac_a)
                out.append(op)
        return out

    agent = vip_agent(a, garp_count=3, garp_interval="50ms", garp_refresh="300ms")
    try:
        await agent.start()
        await async_wait_until(lambda: agent.garp.sent >= 6, 5, 0.02, "3 announcement rounds")
        assert agent.garp.sent == 6  # 3 rounds of request + reply
        await asyncio.sleep(0.05)
        frames = drain()
        assert ours(frames) == [1, 2, 1, 2, 1, 2], [f.hex() for f in frames]
        # the periodic refresh: one more round about every 300 ms
        await async_wait_until(lambda: agent.garp.sent >= 10, 5, 0.05, "two refresh rounds")
    finally:
        await agent.stop()
    after = agent.garp.sent
    await asyncio.sleep(0.7)
    assert agent.garp.sent == after  # stop ended the refresh
    await agent.close()
    sniff.close()
