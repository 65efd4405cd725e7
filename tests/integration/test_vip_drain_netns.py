"""VIP drain in real kernels (resources/vip.py drain, resources/lease.py drain sets, net/sockdiag.py).

A client on the lan has a request in flight to the VIP on director a: it sent the first half,
and sends the rest a moment later. The fault first: released without draining, the address goes
at once, director b takes it, and the second half reaches b, whose kernel resets the
connection: the request is lost. Then with a drain: a new connection during the drain is not
answered (its SYN is dropped and counted; the client would send it again a second later), the
request in flight completes, and the drain ends as soon as it has.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from hadirector.config.model import VipResource
from hadirector.resources.base import AgentContext, agent_for
from hadirector.resources.lease import LeaseTable, now_ms
from hdtest import need_root

VIP = "198.18.0.100"
REQUEST_HEAD, REQUEST_END = b"GET / HTTP/1.0\r\n", b"\r\n"


@pytest.fixture
def hosts(lab):
    need_root("ip", "nft")
    lan = lab.switch("lan")
    c, a, b = lab.host("c"), lab.host("a"), lab.host("b")
    c.connect(lan, "198.18.0.10/24")
    a.connect(lan, "198.18.0.2/24")
    b.connect(lan, "198.18.0.3/24")
    return c, a, b


async def serve(host, name: str, conns: set | None = None) -> asyncio.AbstractServer:
    """An HTTP/1.0 server on port 80 of `host` (all addresses) that answers its name; its open
    connections are in `conns`."""
    conns = set() if conns is None else conns

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        conns.add(w)
        try:
            await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            w.write(b"HTTP/1.0 200 OK\r\n\r\n" + name.encode())
            await w.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
            pass
        finally:
            conns.discard(w)
            w.close()

    s = host.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 80))
    return await asyncio.start_server(handle, sock=s)


async def connect(client, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    s = client.socket()
    s.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(s, (VIP, 80)), timeout)
    except BaseException:
        s.close()
        raise
    return await asyncio.open_connection(sock=s)


async def finish(r, w) -> bytes:
    """Send the rest of the request; the answer (b"" or an exception's name when there is none)."""
    try:
        w.write(REQUEST_END)
        await w.drain()
        return await asyncio.wait_for(r.read(), 5)
    except (ConnectionResetError, BrokenPipeError) as e:
        return type(e).__name__.encode()
    finally:
        w.close()


def take_over(client, agent_b):
    """b takes the VIP; the client asks who has it (as after b's gratuitous ARP)."""
    async def go():
        await agent_b.start()
        client.run(["ip", "neigh", "flush", "all"], check=False)
    return go()


async def test_a_planned_release_drains_the_request_in_flight_and_refuses_new_ones(hosts):
    c, a, b = hosts
    leases = LeaseTable(a.netns)
    on_a = agent_for(VipResource(address=VIP, prefixlen=24, garp_count=1, drain="2s"),
                     AgentContext(netns=a.netns, services={"leases": leases}))
    on_b = agent_for(VipResource(address=VIP, prefixlen=24, garp_count=1), AgentContext(netns=b.netns))
    on_a_conns: set = set()
    servers = [await serve(a, "a", on_a_conns), await serve(b, "b")]
    try:
        leases.renew([VIP], now_ms() + 60_000)
        await on_a.start()
        r, w = await connect(c, 3)
        w.write(REQUEST_HEAD)
        await w.drain()

        # the fault: released without a drain, the address goes at once and the request is lost
        t0 = time.monotonic()
        await on_a.stop()
        assert not a.has_address(VIP) and time.monotonic() - t0 < 0.5
        await take_over(c, on_b)
        answer = await finish(r, w)
        assert not answer.startswith(b"HTTP/1.0 200"), answer
        assert answer in (b"ConnectionResetError", b"BrokenPipeError", b""), answer
        for conn in list(on_a_conns):  # a's half of the lost connection would wait for its end
            conn.transport.abort()

        # back to a
        await on_b.stop()
        await on_a.start()
        c.run(["ip", "neigh", "flush", "all"], check=False)
        r, w = await connect(c, 3)
        w.write(REQUEST_HEAD)
        await w.drain()

        # with a drain: the request in flight completes, a new connection is not answered
        drain = asyncio.ensure_future(on_a.drain(group="web"))
        await asyncio.sleep(0.1)
        assert not drain.done()
        with pytest.raises((asyncio.TimeoutError, OSError)):
            await connect(c, 0.5)  # one SYN, dropped (its retransmission would come after 1 s)
        assert leases.drained() >= 1
        assert a.has_address(VIP)
        answer = await finish(r, w)
        assert answer == b"HTTP/1.0 200 OK\r\n\r\na"
        res = await asyncio.wait_for(drain, 3)
        assert res.skipped == "" and res.in_flight >= 1 and res.left == 0, res
        assert res.waited_ms < 1500, res  # ended when the request did, not at the 2 s bound
        await on_a.stop()
        assert not a.has_address(VIP)
        assert ("netdev", "hdlease") not in set(a.worker.call(lambda: __import__(
            "hadirector.dataplane.libnft", fromlist=["Nft"]).Nft().tables()))

        # the new owner answers new connections
        await take_over(c, on_b)
        r, w = await connect(c, 3)
        w.write(REQUEST_HEAD)
        assert await finish(r, w) == b"HTTP/1.0 200 OK\r\n\r\nb"
        await on_b.stop()
    finally:
        for s in servers:
            s.close()
        for agent in (on_a, on_b):
            await agent.close()
        await leases.close()


async def test_a_drain_with_nothing_in_flight_ends_at_once_and_a_stuck_one_at_its_bound(hosts):
    c, a, b = hosts
    leases = LeaseTable(a.netns)
    on_a = agent_for(VipResource(address=VIP, prefixlen=24, garp_count=0, drain="300ms"),
                     AgentContext(netns=a.netns, services={"leases": leases}))
    server = await serve(a, "a")
    try:
        leases.renew([VIP], now_ms() + 60_000)
        await on_a.start()
        res = await on_a.drain()
        assert (res.in_flight, res.left) == (0, 0) and res.waited_ms < 50, res
        await on_a.stop()
        await on_a.start()  # a new start clears the drain element the last drain left
        r, w = await connect(c, 3)
        w.write(REQUEST_HEAD)
        assert await finish(r, w) == b"HTTP/1.0 200 OK\r\n\r\na"
        r, w = await connect(c, 3)  # never finished
        res = await on_a.drain()
        assert (res.in_flight, res.left) == (1, 1) and 300 <= res.waited_ms < 600, res
        w.close()
        await on_a.stop()
    finally:
        server.close()
        await on_a.close()
        await leases.close()
