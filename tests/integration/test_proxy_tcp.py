"""The proxy data plane on loopback with three real HTTP servers (no root)."""

import asyncio
from collections import Counter

import pytest

from hadirector.balancer.state import RealHealth
from hadirector.dataplane.proxy import Timeouts
from hdtest import async_wait_until

from proxy_util import (DataPlanes, HttpReal, KeepAlive, balancer_config, desired_for, http_get,
                        read_response, service_key)

KEY = service_key()

# pytest-asyncio 1.x warns that overriding event_loop_policy is deprecated (its replacement, the
# pytest_asyncio_loop_factories hook, is global to a conftest); the override still works.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding the \"event_loop_policy\" fixture")


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def event_loop_policy(request):
    """Every test runs on the stock loop and on uvloop (which the daemon uses when installed)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


@pytest.fixture
async def reals():
    rs = [await HttpReal(f"r{i}", host=f"127.0.0.{i + 2}").start() for i in range(3)]
    yield rs
    for r in rs:
        await r.stop()


@pytest.fixture
async def make_dp():
    planes = DataPlanes(KEY)
    yield planes
    await planes.close()


async def many(host, port, n, concurrency=25, source=None):
    sem = asyncio.Semaphore(concurrency)

    async def one():
        async with sem:
            return await http_get(host, port, source=source)

    return await asyncio.gather(*(one() for _ in range(n)))


async def test_wrr_delivers_in_weight_ratio(reals, make_dp):
    dp = make_dp()
    cfg = balancer_config([(reals[0].host, reals[0].port, 3), (reals[1].host, reals[1].port, 1)])
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    bodies = await many(host, port, 2000)
    c = Counter(bodies)
    assert set(c) == {"r0", "r1"}
    assert abs(c["r0"] / c["r1"] - 3.0) <= 0.15  # 3:1 within 5 %
    # wrr is exact: every block of 4 connections scheduled is 3 + 1
    assert c["r0"] == 1500 and c["r1"] == 500
    st = dp.stats().service(KEY)
    assert st.counters.conns == 2000
    assert st.reals[(reals[0].host, reals[0].port)].counters.conns == 1500
    assert st.counters.inbytes > 0 and st.counters.outbytes > 0


@pytest.mark.parametrize("scheduler", ["rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh",
                                       "lblc", "lblcr", "fo", "ovf"])
async def test_every_scheduler_serves(reals, make_dp, scheduler):
    dp = make_dp()
    cfg = balancer_config([(r.host, r.port, 1 + i) for i, r in enumerate(reals)], scheduler=scheduler)
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    bodies = Counter(await many(host, port, 30, concurrency=1))
    assert sum(bodies.values()) == 30
    if scheduler in ("rr", "wrr"):
        assert set(bodies) == {"r0", "r1", "r2"}
    if scheduler == "fo":
        assert set(bodies) == {"r2"}  # the highest weight only


async def test_persistence_holds_a_client(reals, make_dp):
    dp = make_dp()
    cfg = balancer_config([(r.host, r.port, 1) for r in reals], scheduler="rr", persistent=60)
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    same = Counter(await many(host, port, 30, concurrency=5, source="127.0.0.50"))
    assert len(same) == 1
    spread = Counter()
    for i in range(12):
        spread[await http_get(host, port, source=f"127.0.0.{60 + i}")] += 1
    assert len(spread) == 3  # other clients still rotate
    st = dp.stats().service(KEY)
    assert sum(r.persist for r in st.reals.values()) == 13  # one template per client


async def test_weight_zero_drains_without_breaking_open_connection(reals, make_dp):
    dp = make_dp()
    cfg = balancer_config([(r.host, r.port, 1) for r in reals[:2]], scheduler="rr", quiescent=True)
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    ka = await KeepAlive().open(host, port)
    try:
        first = await ka.get()
        idx = int(first[1])
        r = reals[idx]
        st = dp.stats().real(KEY, (r.host, r.port))
        assert (st.active, st.inactive) == (1, 0)
        # the health check fails: quiescent=yes keeps it with weight 0
        health = {(KEY, r.host, r.port): RealHealth(up=False)}
        await dp.apply(desired_for(cfg, health))
        assert dp.stats().real(KEY, (r.host, r.port)).active == 1
        new = Counter(await many(host, port, 20, concurrency=4))
        assert first not in new and sum(new.values()) == 20
        for _ in range(5):  # the open connection keeps working
            assert await ka.get() == first
    finally:
        ka.close()


@pytest.mark.parametrize("expire", [False, True])
async def test_removed_real_connections_follow_expire_nodest_conn(reals, make_dp, expire):
    dp = make_dp(expire_nodest_conn=expire)
    cfg = balancer_config([(r.host, r.port, 1) for r in reals[:2]], scheduler="rr", quiescent=False)
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    ka = await KeepAlive().open(host, port)
    try:
        first = await ka.get()
        r = reals[int(first[1])]
        await dp.apply(desired_for(cfg, {(KEY, r.host, r.port): False}))  # removed
        assert first not in Counter(await many(host, port, 10, concurrency=2))
        if expire:
            async with asyncio.timeout(5):  # reset by the proxy
                with pytest.raises(ConnectionResetError):
                    await ka.reader.read(1)
        else:
            assert await ka.get() == first
            assert dp.stats().real(KEY, (r.host, r.port)).active == 0  # not in the table
            # back up: the same real (from the trash) with its open connection
            await dp.apply(desired_for(cfg))
            assert dp.stats().real(KEY, (r.host, r.port)).active == 1
    finally:
        ka.close()


async def test_fallback_answers_when_all_reals_are_gone(reals, make_dp):
    fb = await HttpReal("fallback", host="127.0.0.9").start()
    try:
        dp = make_dp()
        cfg = balancer_config([(r.host, r.port, 1) for r in reals], fallback={"address": fb.host, "port": fb.port})
        await dp.apply(desired_for(cfg))
        host, port = dp.listen_address(KEY)
        assert await http_get(host, port) != "fallback"
        all_down = {(KEY, r.host, r.port): False for r in reals}
        await dp.apply(desired_for(cfg, all_down))
        assert Counter(await many(host, port, 10)) == {"fallback": 10}
        await dp.apply(desired_for(cfg, {**all_down, (KEY, reals[1].host, reals[1].port): True}))
        assert Counter(await many(host, port, 10)) == {"r1": 10}
    finally:
        await fb.stop()


async def test_no_destination_refuses(reals, make_dp):
    dp = make_dp()
    cfg = balancer_config([(reals[0].host, reals[0].port, 0)])
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await http_get(host, port)
    assert dp.no_dest == 1


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_proxy_protocol_header_reaches_the_real(reals, make_dp, version):
    dp = make_dp(proxy_protocol=version)
    cfg = balancer_config([(reals[0].host, reals[0].port, 1)])
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.77", 0))
    try:
        cport = writer.get_extra_info("sockname")[1]
        writer.write(b"GET /whoami HTTP/1.1\r\nHost: t\r\n\r\n")
        assert await read_response(reader) == f"r0 127.0.0.77:{cport}"
    finally:
        writer.close()
    assert reals[0].proxied_from == [("127.0.0.77", cport)]


async def test_backpressure_bounds_buffering(reals, make_dp):
    dp = make_dp(buffer_high=64 * 1024)
    cfg = balancer_config([(reals[0].host, reals[0].port, 1)])
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    size = 128 * 1024 * 1024
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET /bytes/{size} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        await asyncio.sleep(1.5)  # we do not read: the real must be held back
        held = getattr(reals[0], "sent", 0)
        print(f"real sent {held} bytes before the client read")
        assert 0 < held < size // 3
        conn = next(iter(dp.services[KEY].reals[(reals[0].host, reals[0].port)].conns))
        # what the proxy holds for the client: at most the limit plus one read
        assert len(conn.client.buf or b"") <= 64 * 1024 + 65536
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Content-Length: %d" % size in head
        got = 0
        async with asyncio.timeout(60):
            while got < size:
                chunk = await reader.read(1 << 20)
                assert chunk
                got += len(chunk)
        assert got == size
    finally:
        writer.close()


async def test_idle_timeout_closes_established_connection(reals, make_dp):
    dp = make_dp(timeouts=Timeouts(tcp=1.0, tcpfin=1.0, udp=1.0))
    cfg = balancer_config([(reals[0].host, reals[0].port, 1)])
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    ka = await KeepAlive().open(host, port)
    try:
        assert await ka.get() == "r0"
        async with asyncio.timeout(6):  # functional deadline: closed within a few sweeps
            assert await ka.reader.read(1) == b""
        assert dp.stats().real(KEY, (reals[0].host, reals[0].port)).active == 0
    finally:
        ka.close()


async def test_counts_and_apply_is_idempotent(reals, make_dp):
    dp = make_dp()
    cfg = balancer_config([(r.host, r.port, 1) for r in reals], scheduler="rr")
    desired = desired_for(cfg)
    await dp.apply(desired)
    host, port = dp.listen_address(KEY)
    conns = [await KeepAlive().open(host, port) for _ in range(6)]
    try:
        for c in conns:
            await c.get()
        await dp.apply(desired)  # same state again: nothing moves
        await dp.apply(desired_for(cfg))
        st = dp.stats().service(KEY)
        assert [st.reals[(r.host, r.port)].active for r in reals] == [2, 2, 2]
        assert st.counters.conns == 6
    finally:
        for c in conns:
            c.close()
    await async_wait_until(lambda: not sum(r.active + r.inactive for r in dp.stats().service(KEY).reals.values()),
                           5, 0.05, "every connection to be freed")
    # a scheduler change keeps the listener and counters
    await dp.apply(desired_for(balancer_config([(r.host, r.port, 1) for r in reals], scheduler="wlc")))
    assert dp.stats().service(KEY).counters.conns == 6
    assert await http_get(host, port) in {"r0", "r1", "r2"}


async def test_fwmark_service_is_reported_unsupported(make_dp):
    from hadirector.balancer.state import build_desired
    from hadirector.config.model import Balancer
    from hadirector.dataplane.base import Unserved, UnservedKind
    dp = make_dp(listen={})
    await dp.apply(build_desired(Balancer(virtual=[{"fwmark": 3, "reals": [{"address": "127.0.0.2", "port": 1}]}])))
    assert dp.unserved == {"FWM 3": Unserved("FWM 3", UnservedKind.UNSUPPORTED,
                                             "fwmark services need the kernel data plane (nft)")}
    assert dp.stats().services == {} and "fwm" not in dp.capabilities.protocols
    await dp.apply(build_desired(Balancer(virtual=[])))  # gone from the desired state: forgotten
    assert dp.unserved == {}


async def test_serves_every_scheduler_and_method_its_capabilities_list(reals, make_dp):
    """The proxy's `capabilities` are what it does: each scheduler it lists delivers, and each
    forwarding method it accepts (gate and ipip relayed like masq) reaches the real."""
    from hadirector.config.model import Balancer
    caps = make_dp(listen={}).capabilities
    methods = sorted(caps.methods | caps.relayed_methods)
    assert caps.relayed_methods == {"gate", "ipip"} and "masq" in methods
    virtual, listen = [], {}
    for i, sched in enumerate(sorted(caps.schedulers)):
        method = [m for m in methods if m != "local"][i % 3]
        virtual.append({"address": "127.0.0.10", "port": 1000 + i, "scheduler": sched, "reals": [
            {"address": r.host, "port": r.port, "method": method} for r in reals]})
        listen[service_key(port=1000 + i)] = ("127.0.0.10", 0)
    dp = make_dp(listen=listen)
    await dp.apply(desired_for(Balancer(virtual=virtual)))
    assert dp.unserved == {}
    for key in listen:
        assert await http_get(*dp.listen_address(key)) in {"r0", "r1", "r2"}, key


async def test_real_refusing_connections_closes_the_client(make_dp):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.5", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connect gets RST
    dp = make_dp()
    await dp.apply(desired_for(balancer_config([("127.0.0.5", port, 1)])))
    host, lport = dp.listen_address(KEY)
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await http_get(host, lport)
    assert (dp.connect_errors, dp.connect_timeouts) == (1, 0)
    st = dp.stats().service(KEY).reals[("127.0.0.5", port)]
    assert (st.active, st.inactive, st.counters.conns) == (0, 0, 1)


async def test_connect_timeout(make_dp):
    import socket
    # a listener whose accept queue is full: further SYNs are dropped, connect() hangs
    lsn = socket.socket()
    lsn.bind(("127.0.0.6", 0))
    lsn.listen(0)
    port = lsn.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.6", port))
            fillers.append(f)
        await asyncio.sleep(0.2)
        dp = make_dp(connect_timeout=1.0)
        await dp.apply(desired_for(balancer_config([("127.0.0.6", port, 1)])))
        host, lport = dp.listen_address(KEY)
        reader, writer = await asyncio.open_connection(host, lport)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        async with asyncio.timeout(6):  # functional deadline: the sweeper gives up after ~1-2 s
            assert await reader.read(100) == b""
        writer.close()
        assert (dp.connect_errors, dp.connect_timeouts) == (1, 1)
        assert dp.stats().service(KEY).reals[("127.0.0.6", port)].inactive == 0
    finally:
        for f in fillers:
            f.close()
        lsn.close()


async def test_persistence_settings_change_with_open_connections(reals, make_dp):
    dp = make_dp()
    cfg = balancer_config([(r.host, r.port, 1) for r in reals], scheduler="rr", persistent=60)
    await dp.apply(desired_for(cfg))
    host, port = dp.listen_address(KEY)
    ka = await KeepAlive().open(host, port, source="127.0.0.51")
    try:
        first = await ka.get()
        # persistence switched off while the connection made through a template is open
        await dp.apply(desired_for(balancer_config([(r.host, r.port, 1) for r in reals], scheduler="rr")))
        assert await ka.get() == first
    finally:
        ka.close()
    await async_wait_until(lambda: not sum(r.active + r.inactive for r in dp.stats().service(KEY).reals.values()),
                           5, 0.05, "every connection to be freed")
    assert sum(r.persist for r in dp.stats().service(KEY).reals.values()) == 0
    # the connection's bookkeeping finished (its template belonged to the old table)
    assert all(not real.conns for real in dp.services[KEY].reals.values())
