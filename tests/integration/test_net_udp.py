"""UDP heartbeat links (ucast, mcast, bcast) between network namespaces on a bridge.

Addresses are in 198.18.0.0/15; the multicast group is in 239.0.0.0/8 (administratively scoped,
RFC 2365), which never leaves the namespaces either.
"""

from __future__ import annotations

import asyncio

import pytest

from hadirector.config.model import Link
from hadirector.net.transports import TransportError, open_link
from hdtest import need_root

GROUP = "239.198.18.1"


class Inbox:
    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()

    def __call__(self, name, data, addr):
        self.queue.put_nowait((name, data, addr))

    async def get(self, timeout=5.0):
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def nothing_within(self, seconds):
        try:
            item = await asyncio.wait_for(self.queue.get(), seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected datagram {item!r}")


@pytest.fixture
def pair(lab):  # noqa: F811
    need_root("ip")
    lan = lab.switch("lan")
    a, b = lab.host("a"), lab.host("b")
    a.connect(lan, "198.18.0.2/24")
    b.connect(lan, "198.18.0.3/24")
    return lab, a, b


async def open_both(link, a, b):
    ia, ib = Inbox(), Inbox()
    ta = await open_link(link, ia, netns=a.netns)
    tb = await open_link(link, ib, netns=b.netns)
    return ta, tb, ia, ib


async def test_ucast_skips_own_address_and_reaches_the_peer(pair):
    lab, a, b = pair
    # one link definition listing both nodes serves both (ha.cf `ucast eth0 <each node>`)
    link = Link(kind="ucast", interface="eth0", peers=("198.18.0.2", "198.18.0.3"))
    ta, tb, ia, ib = await open_both(link, a, b)
    try:
        assert ta.destinations == [("198.18.0.3", 694)] and tb.destinations == [("198.18.0.2", 694)]
        ta.send(b"hello from a")
        assert await ib.get() == ("ucast:eth0", b"hello from a", ("198.18.0.2", 694))
        tb.send(b"hello from b")
        assert await ia.get() == ("ucast:eth0", b"hello from b", ("198.18.0.3", 694))
        assert ta.stats.sent == 1 and ta.stats.send_errors == 0 and ta.stats.received == 1
    finally:
        ta.close()
        tb.close()


async def test_bcast_reaches_the_peer_and_drops_our_own(pair):
    lab, a, b = pair
    link = Link(kind="bcast", interface="eth0", port=1694)
    # the addresses have no broadcast address configured: the limited broadcast goes out eth0
    ta, tb, ia, ib = await open_both(link, a, b)
    try:
        assert ta.destinations == [("255.255.255.255", 1694)]
        ta.send(b"bcast")
        assert await ib.get() == ("bcast:eth0", b"bcast", ("198.18.0.2", 1694))
        await ia.nothing_within(0.3)  # our own broadcast came back and was dropped
        assert ta.stats.own == 1
    finally:
        ta.close()
    # with `brd +` the interface's own broadcast address is used
    a.run("ip addr del 198.18.0.2/24 dev eth0 && ip addr add 198.18.0.2/24 brd + dev eth0")
    ta = await open_link(link, ia, netns=a.netns)
    try:
        assert ta.destinations == [("198.18.0.255", 1694)]
        ta.send(b"directed")
        assert await ib.get() == ("bcast:eth0", b"directed", ("198.18.0.2", 1694))
    finally:
        ta.close()
        tb.close()


async def test_mcast_joins_on_the_interface(pair):
    lab, a, b = pair
    link = Link(kind="mcast", interface="eth0", group=GROUP, port=694, ttl=1, loop=True)
    ta, tb, ia, ib = await open_both(link, a, b)
    try:
        ta.send(b"mcast")
        assert await ib.get() == ("mcast:eth0", b"mcast", ("198.18.0.2", 694))
        tb.send(b"back")
        assert await ia.get() == ("mcast:eth0", b"back", ("198.18.0.3", 694))
        # loop on: our own copy came back and was dropped rather than delivered
        assert ta.stats.own == 1 and ta.stats.received == 1
        joined = a.run(["ip", "maddr", "show", "dev", "eth0"]).stdout
        assert GROUP in joined
    finally:
        ta.close()
        tb.close()


async def test_links_are_bound_to_their_interface(pair):
    """a has eth0 (lan, with b) and eth1 (hb, with c). A ucast link on eth0 hears b but not c,
    although both send to a's port 694 (SO_BINDTODEVICE)."""
    lab, a, b = pair
    hb = lab.switch("hb")
    c = lab.host("c")
    a.connect(hb, "198.18.1.2/24")
    c.connect(hb, "198.18.1.4/24")
    ia = Inbox()
    ta = await open_link(Link(kind="ucast", interface="eth0", peers=("198.18.0.3",)), ia, netns=a.netns)
    tb = await open_link(Link(kind="ucast", interface="eth0", peers=("198.18.0.2",)), Inbox(), netns=b.netns)
    tc = await open_link(Link(kind="ucast", interface="eth0", peers=("198.18.1.2",)), Inbox(), netns=c.netns)
    ia1 = Inbox()
    ta1 = await open_link(Link(kind="ucast", interface="eth1", peers=("198.18.1.4",)), ia1, netns=a.netns)
    try:
        tc.send(b"from c")
        tb.send(b"from b")
        assert await ia.get() == ("ucast:eth0", b"from b", ("198.18.0.3", 694))
        assert await ia1.get() == ("ucast:eth1", b"from c", ("198.18.1.4", 694))
        await ia.nothing_within(0.3)
        await ia1.nothing_within(0.1)
    finally:
        for t in (ta, tb, tc, ta1):
            t.close()


async def test_send_errors_are_counted_never_raised(pair):
    lab, a, b = pair
    link = Link(kind="ucast", interface="eth0", peers=("198.18.0.3",))
    ta = await open_link(link, Inbox(), netns=a.netns)
    try:
        a.ifaces["eth0"].set_up(False)  # cable pulled: no route to the peer any more
        ta.send(b"into the void")
        assert ta.stats.send_errors == 1 and ta.stats.last_error
        a.ifaces["eth0"].set_up(True)
    finally:
        ta.close()
    ta.send(b"after close")  # a closed link counts too
    assert ta.stats.send_errors == 2


async def test_open_errors_name_the_problem(pair):
    lab, a, b = pair
    with pytest.raises(TransportError) as err:
        await open_link(Link(kind="ucast", interface="eth9", peers=("198.18.0.3",)), Inbox(), netns=a.netns)
    assert "interface eth9 does not exist" in str(err.value)
    with pytest.raises(TransportError) as err:
        await open_link(Link(kind="bcast", interface="eth0"), Inbox(), netns="hdt-no-such-namespace")
    assert "no such namespace" in str(err.value)


async def test_port_unreachable_is_read_from_the_error_queue(pair):
    """a sends to b's 694, where nothing listens (b's node uses another udpport): a hears of it
    through ICMP port unreachable (IP_RECVERR), per destination, and the link keeps working."""
    import errno
    lab, a, b = pair
    errors = []
    ia = Inbox()
    ta = await open_link(Link(kind="ucast", interface="eth0", peers=("198.18.0.3",)), ia, netns=a.netns,
                         on_unreachable=lambda name, dest, err: errors.append((name, dest, err)))
    tb = await open_link(Link(kind="ucast", interface="eth0", peers=("198.18.0.2",), port=695), Inbox(),
                         netns=b.netns)
    try:
        for _ in range(3):
            ta.send(b"anyone?")
            await asyncio.sleep(0.05)
        for _ in range(40):
            if len(errors) >= 2:
                break
            await asyncio.sleep(0.05)
        assert errors and errors[0] == ("ucast:eth0", ("198.18.0.3", 694), errno.ECONNREFUSED)
        assert ta.unreachable[("198.18.0.3", 694)] == len(errors) and ta.stats.icmp_errors == len(errors)
        # still delivering: a datagram from a peer on the right port arrives
        tc = await open_link(Link(kind="ucast", interface="eth0", peers=("198.18.0.2",)), Inbox(),
                             netns=b.netns)
        tc.send(b"here")
        assert (await ia.get())[1] == b"here"
        tc.close()
    finally:
        ta.close()
        tb.close()
