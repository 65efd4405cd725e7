"""UDP virtual services through the proxy (loopback, no root)."""

import asyncio
from collections import Counter

import pytest

from hadirector.dataplane.proxy import Timeouts
from hdtest import async_wait_until

from proxy_util import DataPlanes, UdpReal, balancer_config, desired_for, service_key

KEY = service_key(port=53, protocol="udp")


class Client(asyncio.DatagramProtocol):
    def __init__(self):
        self.q: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.q.put_nowait(data)


async def client(host="127.0.0.1"):
    loop = asyncio.get_running_loop()
    proto = Client()
    t, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=(host, 0))
    return t, proto


async def ask(t, proto, target, payload: bytes, timeout=3.0) -> bytes:
    t.sendto(payload, target)
    async with asyncio.timeout(timeout):
        return await proto.q.get()


@pytest.fixture
async def reals():
    rs = [await UdpReal(f"u{i}", host=f"127.0.0.{i + 2}").start() for i in range(2)]
    yield rs
    for r in rs:
        await r.stop()


@pytest.fixture
async def make_dp():
    planes = DataPlanes(KEY)
    yield planes
    await planes.close()


async def test_udp_flows_in_weight_ratio_and_sticky(reals, make_dp):
    dp = make_dp()
    cfg = balancer_config([(r.host, r.port, w) for r, w in zip(reals, (3, 1))], port=53, protocol="udp")
    await dp.apply(desired_for(cfg))
    target = dp.listen_address(KEY)
    seen = Counter()
    clients = [await client() for _ in range(40)]
    try:
        for t, p in clients:
            first = await ask(t, p, target, b"hello")
            ident = first.split(b":")[0]
            assert first == ident + b":hello"
            for i in range(3):  # the same flow stays on its real
                assert await ask(t, p, target, b"n%d" % i) == ident + b":n%d" % i
            seen[ident] += 1
    finally:
        for t, _ in clients:
            t.close()
    assert seen == {b"u0": 30, b"u1": 10}
    st = dp.stats().service(KEY)
    assert st.counters.conns == 40
    assert st.counters.inpkts == 160 and st.counters.outpkts == 160
    # UDP flows count as inactive connections, as in IPVS
    assert sum(r.inactive for r in st.reals.values()) == 40
    assert sum(r.active for r in st.reals.values()) == 0


async def test_udp_flow_expires_after_udp_timeout(reals, make_dp):
    dp = make_dp(timeouts=Timeouts(udp=1.0))
    cfg = balancer_config([(reals[0].host, reals[0].port, 1)], port=53, protocol="udp")
    await dp.apply(desired_for(cfg))
    target = dp.listen_address(KEY)
    t, p = await client()
    try:
        await ask(t, p, target, b"x")
        assert dp.stats().service(KEY).reals[(reals[0].host, reals[0].port)].inactive == 1
        await async_wait_until(lambda: not dp.stats().service(KEY).reals[(reals[0].host, reals[0].port)].inactive,
                               6, 0.1, "the idle UDP flow to expire")
        assert await ask(t, p, target, b"y") == b"u0:y"  # a new flow
        assert dp.stats().service(KEY).counters.conns == 2
    finally:
        t.close()


async def test_one_packet_scheduling(reals, make_dp):
    dp = make_dp()
    cfg = balancer_config([(r.host, r.port, 1) for r in reals], port=53, protocol="udp",
                          scheduler="rr", ops=True)
    await dp.apply(desired_for(cfg))
    target = dp.listen_address(KEY)
    t, p = await client()
    try:
        got = [(await ask(t, p, target, b"q")).split(b":")[0] for _ in range(6)]
    finally:
        t.close()
    assert got == [b"u1", b"u0"] * 3 or got == [b"u0", b"u1"] * 3  # every datagram rescheduled
    st = dp.stats().service(KEY)
    assert st.counters.conns == 6
    assert sum(r.inactive + r.active for r in st.reals.values()) == 0  # freed at once


async def test_udp_proxy_protocol_v2(reals, make_dp):
    dp = make_dp(proxy_protocol="v2")
    cfg = balancer_config([(reals[0].host, reals[0].port, 1)], port=53, protocol="udp")
    await dp.apply(desired_for(cfg))
    target = dp.listen_address(KEY)
    t, p = await client("127.0.0.88")
    try:
        assert await ask(t, p, target, b"ping") == b"u0:ping"
        assert reals[0].proxied_from == [("127.0.0.88", t.get_extra_info("sockname")[1])]
    finally:
        t.close()


async def test_udp_proxy_protocol_v1_is_refused():
    from hadirector.dataplane.proxy import proxy_header
    with pytest.raises(ValueError, match="v1 carries TCP only"):
        proxy_header("v1", "udp", ("127.0.0.1", 1), ("127.0.0.2", 2))
