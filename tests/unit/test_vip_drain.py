"""The VIP drain without a kernel: the poll loop on a fake clock, the agent's skips, and the
manager draining a planned release's VIPs before anything stops."""

from __future__ import annotations

import asyncio

from hadirector.config.model import Group, ScriptResource, VipResource
from hadirector.resources import base, vip
from hadirector.resources.manager import ResourceManager
from hadirector.resources.vip import DrainResult, VipAgent, wait_drained


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_wait_drained_polls_until_none_is_left(monkeypatch):
    clock = Clock()
    real_sleep = asyncio.sleep

    async def sleep(s):
        clock.t += s
        await real_sleep(0)

    monkeypatch.setattr(vip.asyncio, "sleep", sleep)
    counts = iter([3, 3, 2, 0, 5])
    assert await wait_drained(lambda: next(counts), 500, poll_ms=5, clock=clock) == (3, 0, 15)
    # never finishing: it gives up at the timeout, not later
    clock.t = 0.0
    assert await wait_drained(lambda: 1, 42, poll_ms=5, clock=clock) == (1, 1, 42)
    assert await wait_drained(lambda: 0, 500, clock=clock) == (0, 0, 0)


def test_drain_results_say_what_happened():
    assert DrainResult("198.18.0.100", 3, 0, 12).describe() == "drained in 12 ms"
    assert DrainResult("198.18.0.100", 3, 1, 500).describe() == \
        "1 of 3 still in flight after 500 ms; removing it anyway"
    assert DrainResult("198.18.0.100", 0, 0, 0, "draining is off").describe() == "not drained (draining is off)"


class Leases:
    def __init__(self):
        self.draining: list[str] = []

    async def drain(self, address, on=True):
        self.draining.append(address)


async def test_the_agent_skips_a_drain_it_cannot_or_need_not_do():
    model = VipResource(address="198.18.0.100")
    assert (await VipAgent(model, base.AgentContext()).drain()).skipped == "no VIP leases"
    ctx = base.AgentContext(services={"leases": Leases()})
    assert (await VipAgent(model, ctx).drain()).skipped == "not placed by this agent"
    off = VipAgent(VipResource(address="198.18.0.100", drain=0), ctx)
    off.placement = vip.Placement(2, "eth0", 24, "eth0:0", None)
    assert (await off.drain()).skipped == "draining is off"
    assert ctx.services["leases"].draining == []


async def test_the_agent_drains_then_reports(monkeypatch):
    counts = iter([2, 1, 0])

    class Sockets:
        def __init__(self, netns):
            self.closed = False

        def in_flight(self, address):
            return [None] * next(counts)

        def close(self):
            pass

    monkeypatch.setattr(vip, "TcpSockets", Sockets)
    leases = Leases()
    agent = VipAgent(VipResource(address="198.18.0.100"), base.AgentContext(services={"leases": leases}))
    agent.placement = vip.Placement(2, "eth0", 24, "eth0:0", None)
    res = await agent.drain(1000, group="web")
    assert (res.in_flight, res.left, res.skipped) == (2, 0, "") and leases.draining == ["198.18.0.100"]


class Recorder(base.Agent):
    kind = "vip"  # looks like a VIP to the manager: it has drain()

    def __init__(self, name, log):
        self._name, self.log = name, log

    @property
    def name(self):
        return self._name

    async def start(self):
        self.log.append(("start", self._name))

    async def stop(self):
        self.log.append(("stop", self._name))

    async def monitor(self):
        return True

    async def drain(self, timeout_ms=None, group=""):
        self.log.append(("drain", self._name, group))
        await asyncio.sleep(0.01)
        return DrainResult(self._name, 1, 0, 10)


class Plain(Recorder):
    drain = None  # a script: nothing to drain


async def test_the_manager_drains_every_vip_before_anything_stops_on_a_planned_release(monkeypatch):
    log: list = []
    group = Group(name="web", preferred_node="a", monitor_interval=3600_000,
                  resources=(VipResource(address="198.18.0.100"), VipResource(address="198.18.0.101"),
                             ScriptResource(name="httpd")))
    agents = {0: Recorder("vip1", log), 1: Recorder("vip2", log), 2: Plain("httpd", log)}
    m = ResourceManager()
    monkeypatch.setattr(m, "_make_agents", lambda g: [agents[i] for i in range(3)])
    assert await m.start_group(group)
    log.clear()
    assert await m.stop_group(group, drain=True)
    assert log == [("drain", "vip1", "web"), ("drain", "vip2", "web"),
                   ("stop", "httpd"), ("stop", "vip2"), ("stop", "vip1")]
    # not planned (or not running): no drain
    assert await m.start_group(group)
    log.clear()
    assert await m.stop_group(group)
    assert [e[0] for e in log] == ["stop"] * 3
    log.clear()
    assert await m.stop_group(group, drain=True)  # already stopped: nothing to drain
    assert [e[0] for e in log] == ["stop"] * 3
    await m.close()
