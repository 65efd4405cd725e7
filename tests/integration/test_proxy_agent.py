"""The `balancer` resource agent driving the proxy data plane through a BalancerDriver."""

import asyncio

import pytest

from hadirector.balancer.state import RealHealth, ServiceMemory, build_desired
from hadirector.config.model import Balancer, BalancerResource
from hadirector.daemon.balancer import BalancerDriver
from hadirector.dataplane.base import UnservedKind
from hadirector.dataplane.factory import choose_dataplane
from hadirector.dataplane.proxy import ProxyDataPlane
from hadirector.render.lvs import decode_snapshot, render_lvs
from hadirector.resources.base import AgentContext, AgentError, agent_for

from proxy_util import HttpReal, balancer_config, http_get, service_key

KEY = service_key()


async def test_agent_starts_monitors_and_stops_the_balancer():
    reals = [await HttpReal(f"r{i}", host=f"127.0.0.{i + 2}").start() for i in range(2)]
    cfg = balancer_config([(r.host, r.port, 1) for r in reals], scheduler="rr", quiescent=False)
    made = []

    def factory(kind):
        assert kind == "proxy"
        dp = ProxyDataPlane(listen={KEY: ("127.0.0.10", 0)})
        made.append(dp)
        return dp

    driver = BalancerDriver(cfg, dataplane="proxy", factory=factory)
    agent = agent_for(BalancerResource(source="ldirectord.cf"), AgentContext(services={"balancer": driver}))
    try:
        assert agent.name == "balancer (ldirectord.cf)"
        assert await agent.monitor() is False
        await agent.start()
        assert await agent.monitor() is True
        host, port = made[0].listen_address(KEY)
        assert {await http_get(host, port) for _ in range(4)} == {"r0", "r1"}

        # a check reports r0 down (the desired state's owner computes the new state): traffic
        # moves at once
        driver.want(build_desired(cfg, {(KEY, reals[0].host, reals[0].port): RealHealth(up=False)}))
        assert await driver.sync()
        assert {await http_get(host, port) for _ in range(4)} == {"r1"}
        driver.want(build_desired(cfg, {(KEY, reals[0].host, reals[0].port): False}))
        assert not await driver.sync()  # no change

        desired, stats = decode_snapshot(driver.snapshot())
        text = render_lvs(desired, stats)
        assert f"{reals[1].host}:{reals[1].port}" in text and f"{reals[0].host}:{reals[0].port}" not in text
        assert agent.status()["dataplane"] == "proxy" and agent.status()["running"]

        await agent.stop()
        assert await agent.monitor() is False
        with pytest.raises((ConnectionError, OSError)):
            await http_get(host, port)
        # a state wanted while stopped is installed at the next start
        driver.want(build_desired(cfg, {(KEY, reals[0].host, reals[0].port): True}))
        assert not await driver.sync()
        await agent.start()
        host, port = made[1].listen_address(KEY)
        assert {await http_get(host, port) for _ in range(4)} == {"r0", "r1"}
    finally:
        await driver.stop()
        for r in reals:
            await r.stop()


async def test_agent_without_driver_and_port_in_use():
    agent = agent_for(BalancerResource(), AgentContext())
    with pytest.raises(AgentError, match="no balancer to start") as e:
        await agent.start()
    assert not e.value.transient

    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.12", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        cfg = balancer_config([("127.0.0.2", 1, 1)], vip="127.0.0.12", port=port)
        driver = BalancerDriver(cfg, dataplane="proxy",
                                factory=lambda kind: ProxyDataPlane(freebind=False))
        agent = agent_for(BalancerResource(), AgentContext(services={"balancer": driver}))
        with pytest.raises(AgentError, match="cannot listen on 127.0.0.12") as e:
            await agent.start()
        assert e.value.transient
        assert await agent.monitor() is False
        key = service_key("127.0.0.12", port)
        assert [(u.service, u.kind) for u in driver.dataplane.unserved.values()] == [
            (key, UnservedKind.CANNOT_LISTEN)]
        assert agent.status()["unserved"][key]["kind"] == "cannot-listen"
        await agent.stop()
    finally:
        blocker.close()


async def test_an_unsupported_service_is_reported_but_the_balancer_stays_healthy():
    """A fwmark service the proxy cannot serve is configuration, the same on every node: it is
    listed, but the monitor does not fail (that would only move the group to a node that cannot
    serve it either); a service that cannot listen fails it (above)."""
    real = await HttpReal("r0", host="127.0.0.2").start()
    cfg = Balancer(virtual=[
        {"address": "127.0.0.10", "port": 80, "reals": [{"address": real.host, "port": real.port,
                                                          "method": "masq"}]},
        {"fwmark": 3, "reals": [{"address": real.host, "port": real.port}]}])
    made = []

    def factory(kind):
        dp = ProxyDataPlane(listen={KEY: ("127.0.0.10", 0)})
        made.append(dp)
        return dp

    driver = BalancerDriver(cfg, dataplane="proxy", factory=factory)
    agent = agent_for(BalancerResource(), AgentContext(services={"balancer": driver}))
    try:
        await agent.start()
        assert await agent.monitor() is True
        assert agent.status()["unserved"] == {
            "FWM 3": {"kind": "unsupported", "detail": "fwmark services need the kernel data plane (nft)"}}
        assert await http_get(*made[0].listen_address(KEY)) == "r0"
    finally:
        await driver.stop()
        await real.stop()


def test_choose_dataplane():
    assert choose_dataplane("proxy") == "proxy"
    assert choose_dataplane("nft") == "nft"
    assert choose_dataplane("auto") in ("nft", "proxy")
    with pytest.raises(ValueError, match="expected auto, nft or proxy"):
        choose_dataplane("ipvs")


async def test_driver_quorum_and_reload():
    reals = [await HttpReal(f"r{i}", host=f"127.0.0.{i + 2}").start() for i in range(2)]
    fb = await HttpReal("sorry", host="127.0.0.9").start()
    made = []

    def factory(kind):
        dp = ProxyDataPlane(listen={KEY: ("127.0.0.10", 0)})
        made.append(dp)
        return dp

    cfg = balancer_config([(r.host, r.port, 1) for r in reals], scheduler="rr", quorum=2,
                          fallback={"address": fb.host, "port": fb.port})
    driver = BalancerDriver(cfg, dataplane="proxy", factory=factory)
    try:
        await driver.start()
        host, port = made[0].listen_address(KEY)
        assert {await http_get(host, port) for _ in range(4)} == {"r0", "r1"}
        # the quorum is lost (balancer/state.py keeps it): the sorry server takes the traffic
        driver.want(build_desired(cfg, memory={KEY: ServiceMemory(quorum_up=False)}))
        assert await driver.sync()
        assert {await http_get(host, port) for _ in range(4)} == {"sorry"}
        driver.want(build_desired(cfg))
        assert await driver.sync()
        # reload: r1 leaves the configuration
        await driver.reload(balancer_config([(reals[0].host, reals[0].port, 1)], scheduler="rr"))
        assert {await http_get(host, port) for _ in range(4)} == {"r0"}
    finally:
        await driver.stop()
        for r in reals + [fb]:
            await r.stop()


async def test_reload_to_checktype_off_takes_reals_down():
    cfg = balancer_config([("127.0.0.2", 8080, 1)])
    driver = BalancerDriver(cfg, dataplane="proxy")
    await driver.reload(balancer_config([("127.0.0.2", 8080, 1)], checktype="off"))
    assert driver.wanted.service(KEY).installed == ()
