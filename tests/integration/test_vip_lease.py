"""VIP leases in a real kernel (resources/lease.py with the vip agent), address conflict probes and
watches on a real wire (net/acd.py), seen from an observer on the segment.

Each fault is proven from the observer's side: while the lease holds, the holder's kernel answers
ARP/ND and pings; once it runs out, the same questions go unanswered, although the address is
still on the holder's interface.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from hadirector.config.model import VipResource
from hadirector.dataplane.libnft import Nft
from hadirector.lab.arpwatch import watch
from hadirector.net.acd import CLAIM, PROBE, AddressWatch
from hadirector.resources.base import AgentContext, agent_for
from hadirector.resources.lease import TABLE, LeaseTable, now_ms
from hdtest import need_root

VIP = "198.18.0.100"
VIP6 = "2001:2::100"


@pytest.fixture
def hosts(lab):
    need_root("ip", "ping", "nft")
    lan = lab.switch("lan")
    obs, a, b = lab.host("obs"), lab.host("a"), lab.host("b")
    obs.connect(lan, "198.18.0.10/24", "2001:2::10/64")
    a.connect(lan, "198.18.0.2/24", "2001:2::2/64")
    b.connect(lan, "198.18.0.3/24", "2001:2::3/64")
    return obs, a, b


def answering(obs, seconds=0.3) -> set[str]:
    """MACs that answered ARP for the VIP from the observer during `seconds`."""
    r = obs.worker.call(watch, "eth0", VIP, seconds, 0.02)
    return {m for _, macs in r["samples"] for m in macs}


def pings(obs, address) -> bool:
    obs.run(["ip", "neigh", "flush", "all"], check=False)
    cmd = ["ping", "-c", "1", "-W", "1", address]
    return obs.run(cmd, check=False).returncode == 0


def tables(host) -> set[tuple[str, str]]:
    return set(host.worker.call(lambda: Nft().tables()))


async def test_the_kernel_answers_only_under_a_lease(hosts):
    obs, a, b = hosts
    leases = LeaseTable(a.netns)
    agent = agent_for(VipResource(address=VIP, garp_count=0), AgentContext(netns=a.netns,
                                                                           services={"leases": leases}))
    try:
        leases.renew([VIP], now_ms() + 600)  # the core's first Lease comes before AcquireGroup
        await agent.start()
        assert ("netdev", TABLE) in tables(a)
        assert answering(obs) == {a.mac("eth0")}
        assert pings(obs, VIP)
        assert agent.status()["leased"] is True
        # no renewal: 600 ms after it was given the kernel falls silent, the address stays
        await asyncio.sleep(0.7)
        assert await agent.monitor() is True
        assert answering(obs) == set()
        assert not pings(obs, VIP)
        # a renewal brings it back at once
        leases.renew([VIP], now_ms() + 2000)
        await asyncio.sleep(0.05)
        assert answering(obs) == {a.mac("eth0")}
        # a late renewal (its end already past) is not applied: the lease is not stretched
        leases.renew([VIP], now_ms() - 1)
        await agent.stop()
        assert ("netdev", TABLE) not in tables(a)  # removed with the last guarded address
    finally:
        await agent.close()
        assert await leases.close() == []
    assert ("netdev", TABLE) not in tables(a)


async def test_unleased_announcements_and_ipv6_answers_are_dropped(hosts):
    obs, a, b = hosts
    leases = LeaseTable(a.netns)
    ctx = AgentContext(netns=a.netns, services={"leases": leases})
    v6 = agent_for(VipResource(address=VIP6, garp_count=0), ctx)
    try:
        leases.renew([VIP6], now_ms() + 500)
        await v6.start()
        assert pings(obs, VIP6)
        await asyncio.sleep(0.6)
        assert not pings(obs, VIP6)  # the neighbour advertisement for it is dropped at egress
        # our own gratuitous announcement is held back too while unleased
        obs.sysctl("net.ipv4.conf.eth0.arp_accept", 1)
        v4 = agent_for(VipResource(address=VIP, garp_count=2, garp_interval="50ms"), ctx)
        leases.renew([VIP], now_ms() - 1)  # expired: guarded without a lease
        await v4.start()
        await asyncio.sleep(0.3)
        assert obs.neigh_mac(VIP) is None
        leases.renew([VIP], now_ms() + 2000)
        await v4.reannounce()
        t_end = time.monotonic() + 3
        while obs.neigh_mac(VIP) != a.mac("eth0") and time.monotonic() < t_end:
            await asyncio.sleep(0.05)
        assert obs.neigh_mac(VIP) == a.mac("eth0")
        await v4.stop()
        await v6.stop()
    finally:
        await v6.close()
        await leases.close()


async def test_the_lease_table_lives_beside_the_balancers_tables(hosts):
    """Both in one namespace: the balancer's purge leaves ours, ours removes only itself."""
    from hadirector.dataplane.nft import NftDataPlane
    obs, a, b = hosts
    a.run(["nft", "add", "table", "ip", "hadirector"])
    a.run(["nft", "add", "table", "netdev", "hadirector_eth0"])
    leases = LeaseTable(a.netns)
    agent = agent_for(VipResource(address=VIP, garp_count=0),
                      AgentContext(netns=a.netns, services={"leases": leases}))
    leases.renew([VIP], now_ms() + 5000)
    await agent.start()
    assert {("ip", "hadirector"), ("netdev", "hadirector_eth0"), ("netdev", TABLE)} <= tables(a)
    assert sorted(NftDataPlane.purge(a.netns)) == [("ip", "hadirector"), ("netdev", "hadirector_eth0")]
    assert tables(a) == {("netdev", TABLE)}
    assert answering(obs) == {a.mac("eth0")}
    await agent.stop()
    await agent.close()
    await leases.close()
    assert tables(a) == set()


async def test_a_crashed_runs_guard_keeps_its_stale_vip_silent_until_it_is_stopped(hosts):
    obs, a, b = hosts
    leases = LeaseTable(a.netns)
    agent = agent_for(VipResource(address=VIP, garp_count=0),
                      AgentContext(netns=a.netns, services={"leases": leases}))
    leases.renew([VIP], now_ms() + 300)
    await agent.start()
    await agent.close()
    leases._worker.close()  # the daemon dies: no close(), the table stays
    await asyncio.sleep(0.4)
    assert answering(obs) == set()
    # the next run adopts the table; its start-up clean-up stops the stale VIP
    again = LeaseTable(a.netns)
    assert again.guarded == {VIP: ""}
    stale = agent_for(VipResource(address=VIP), AgentContext(netns=a.netns, services={"leases": again}))
    assert answering(obs) == set()
    await stale.stop()
    assert await again.close() == []
    assert ("netdev", TABLE) not in tables(a)


async def test_probes_are_answered_by_the_holder_and_seen_by_a_rival(hosts):
    """RFC 5227 on a real segment: b probes for the VIP a holds and hears a claim from a's MAC; a
    rival's probe is a probe; IPv6 duplicate address detection the same way."""
    obs, a, b = hosts
    a.add_address(f"{VIP}/24", "eth0")
    a.add_address(f"{VIP6}/64", "eth0")
    seen_b, seen_obs = [], []
    wb = AddressWatch("eth0", [VIP, VIP6], lambda *x: seen_b.append(x), netns=b.netns)
    wo = AddressWatch("eth0", [VIP, VIP6], lambda *x: seen_obs.append(x), netns=obs.netns)
    wb.open()
    wo.open()
    try:
        assert wb.probe(VIP) and wb.probe(VIP6)
        t_end = time.monotonic() + 3
        while len({s[0] for s in seen_b}) < 2 and time.monotonic() < t_end:
            await asyncio.sleep(0.02)
        claims = {(s[0], s[1], s[2]) for s in seen_b}
        assert (VIP, CLAIM, a.mac("eth0")) in claims and (VIP6, CLAIM, a.mac("eth0")) in claims
        probes = {(s[0], s[1], s[2]) for s in seen_obs}
        assert (VIP, PROBE, b.mac("eth0")) in probes and (VIP6, PROBE, b.mac("eth0")) in probes
        assert all(s[3] == b.mac("eth0") for s in seen_b)  # own MAC reported for the tie-break
    finally:
        wb.close()
        wo.close()
    # nobody holds it: no answer to a probe
    a.del_address(f"{VIP}/24", "eth0")
    seen_b.clear()
    wb = AddressWatch("eth0", [VIP], lambda *x: seen_b.append(x), netns=b.netns)
    wb.open()
    try:
        wb.probe(VIP)
        await asyncio.sleep(0.3)
        assert [s for s in seen_b if s[1] == CLAIM] == []
    finally:
        wb.close()
