"""The resource manager driving real agents: shell resource scripts (controlled through files) and,
as root, a VIP in a network namespace."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from hadirector.config.model import Group, ScriptResource, VipResource
from hadirector.resources.base import AgentContext
from hadirector.resources.manager import GroupFailure, GroupState, ResourceManager
from hdtest import async_wait_until, need_root

# `svc NAME ACTION`: state in D/state-NAME; D/fail-start-NAME holds how many starts fail;
# D/hang-start-NAME makes start hang; D/fail-stop-NAME makes stop fail.
SVC = """#!/bin/sh
D={dir}
N=$1
A=$2
echo "$N $A" >> $D/calls
case $A in
  start)
    [ -e $D/hang-start-$N ] && exec sleep 30
    if [ -s $D/fail-start-$N ]; then
      n=$(cat $D/fail-start-$N)
      if [ "$n" -gt 0 ]; then echo $((n - 1)) > $D/fail-start-$N; echo "cannot start $N" >&2; exit 1; fi
    fi
    touch $D/state-$N; exit 0;;
  stop)
    [ -e $D/fail-stop-$N ] && exit 1
    rm -f $D/state-$N; exit 0;;
  status)
    if [ -e $D/state-$N ]; then echo "$N is running"; else echo "$N is not running"; fi; exit 0;;
esac
exit 2
"""


@pytest.fixture
def env(tmp_path):
    rd = tmp_path / "resource.d"
    rd.mkdir()
    (rd / "svc").write_text(SVC.format(dir=tmp_path))
    (rd / "svc").chmod(0o755)
    return tmp_path, AgentContext(resource_dirs=(str(rd),))


def group(*names, name="web", **kw):
    kw.setdefault("retries", 1)
    kw.setdefault("monitor_interval", "60s")
    return Group(name=name, preferred_node="n1",
                 resources=tuple(ScriptResource(name="svc", args=(n,)) for n in names), **kw)


def calls(tmp, skip_status=True):
    p = tmp / "calls"
    lines = p.read_text().splitlines() if p.exists() else []
    return [ln for ln in lines if not (skip_status and ln.endswith(" status"))]


def running(tmp, n):
    return (tmp / f"state-{n}").exists()


async def test_start_in_order_and_stop_in_reverse(env):
    tmp, ctx = env
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    g = group("r1", "r2", "r3")
    assert await mgr.start_group(g) is True
    assert mgr.state("web") == GroupState.RUNNING
    assert calls(tmp) == ["r1 start", "r2 start", "r3 start"]
    assert await mgr.start_group(g) is True  # already running: nothing more happens
    assert len(calls(tmp)) == 3
    assert await mgr.stop_group(g) is True
    assert calls(tmp)[3:] == ["r3 stop", "r2 stop", "r1 stop"]
    assert mgr.state("web") == GroupState.STOPPED
    assert not any(running(tmp, n) for n in ("r1", "r2", "r3"))
    await mgr.close()


async def test_failed_start_is_retried(env):
    tmp, ctx = env
    (tmp / "fail-start-r2").write_text("2")
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    assert await mgr.start_group(group("r1", "r2", retries=2)) is True
    assert calls(tmp) == ["r1 start", "r2 start", "r2 stop", "r2 start", "r2 stop", "r2 start"]
    assert mgr.snapshot()["web"]["resources"][1]["failures"] == 2
    await mgr.stop_group(group("r1", "r2", retries=2))
    await mgr.close()


async def test_start_failure_beyond_retries_gives_the_group_up(env):
    tmp, ctx = env
    (tmp / "fail-start-r2").write_text("9")
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    assert await mgr.start_group(group("r1", "r2", "r3", retries=1)) is False
    # r2 failed twice (1 + 1 retry), then the whole group was stopped in reverse (heartbeat:
    # "Giving up resources due to failure of ...")
    assert calls(tmp) == ["r1 start", "r2 start", "r2 stop", "r2 start",
                          "r3 stop", "r2 stop", "r1 stop"]
    assert mgr.state("web") == GroupState.FAILED
    snap = mgr.snapshot()["web"]
    assert "svc::r2 did not start" in snap["last_error"] and "cannot start r2" in snap["last_error"]
    assert not running(tmp, "r1")
    await mgr.close()


async def test_a_fatal_start_error_is_not_retried(env):
    tmp, ctx = env
    g = Group(name="web", preferred_node="n1", retries=3,
              resources=(ScriptResource(name="svc", args=("r1",)), ScriptResource(name="missing")))
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    assert await mgr.start_group(g) is False
    assert calls(tmp) == ["r1 start", "r1 stop"]
    assert "cannot locate resource script missing" in mgr.snapshot()["web"]["last_error"]
    await mgr.close()


async def test_a_hanging_start_times_out(env):
    tmp, ctx = env
    (tmp / "hang-start-r1").touch()
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    t0 = time.monotonic()
    assert await mgr.start_group(group("r1", retries=0, start_timeout="300ms")) is False
    assert time.monotonic() - t0 < 10
    assert "timed out after 300 ms" in mgr.snapshot()["web"]["last_error"]
    await mgr.close()


async def test_monitor_restarts_a_resource_that_stopped(env):
    tmp, ctx = env
    failures = []
    mgr = ResourceManager(ctx, retry_delay_ms=10, on_failure=failures.append)
    g = group("r1", "r2", retries=1, monitor_interval="100ms")
    assert await mgr.start_group(g) is True
    (tmp / "state-r2").unlink()  # r2 dies behind our back
    await async_wait_until(lambda: calls(tmp).count("r2 start") == 2, 5, 0.02, "r2 started again")
    await async_wait_until(lambda: running(tmp, "r2"), 5, 0.02, "r2 running")
    assert mgr.state("web") == GroupState.RUNNING
    assert failures == [] and mgr.failures.empty()
    assert mgr.snapshot()["web"]["resources"][1]["failures"] == 1
    await mgr.stop_group(g)
    await mgr.close()


async def test_monitor_failure_beyond_retries_is_reported(env):
    tmp, ctx = env
    failures = []
    mgr = ResourceManager(ctx, retry_delay_ms=10, on_failure=failures.append)
    g = group("r1", "r2", retries=0, monitor_interval="100ms")
    assert await mgr.start_group(g) is True
    (tmp / "state-r2").unlink()
    failure = await asyncio.wait_for(mgr.failures.get(), 5)
    assert failure == GroupFailure("web", "script svc::r2", "monitor", "script svc::r2 is not running")
    assert failures == [failure]
    assert mgr.state("web") == GroupState.FAILED
    # the manager reports; releasing is the daemon's call
    assert running(tmp, "r1")
    assert await mgr.stop_group(g) is True
    assert not running(tmp, "r1") and mgr.state("web") == GroupState.STOPPED
    await mgr.close()


async def test_stop_tries_every_resource(env):
    tmp, ctx = env
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    g = group("r1", "r2", "r3", retries=1)
    assert await mgr.start_group(g) is True
    (tmp / "fail-stop-r2").touch()
    assert await mgr.stop_group(g) is False
    assert calls(tmp)[3:] == ["r3 stop", "r2 stop", "r2 stop", "r1 stop"]
    assert not running(tmp, "r1") and not running(tmp, "r3") and running(tmp, "r2")
    assert mgr.state("web") == GroupState.FAILED
    assert "svc::r2 could not be stopped" in mgr.snapshot()["web"]["last_error"]
    await mgr.close()


async def test_stop_during_start_cancels_the_start(env):
    tmp, ctx = env
    (tmp / "hang-start-r2").touch()
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    g = group("r1", "r2", "r3")
    starting = asyncio.create_task(mgr.start_group(g))
    await async_wait_until(lambda: "r2 start" in calls(tmp), 5, 0.02, "r2 start")
    t0 = time.monotonic()
    assert await mgr.stop_group(g) is True
    assert await asyncio.wait_for(starting, 5) is False
    assert time.monotonic() - t0 < 10
    assert calls(tmp)[-3:] == ["r3 stop", "r2 stop", "r1 stop"]
    assert "r3 start" not in calls(tmp)
    await mgr.close()


async def test_stop_stale_stops_only_what_runs(env):
    tmp, ctx = env
    (tmp / "state-r1").touch()  # left behind by a crash
    (tmp / "state-r3").touch()
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    stopped = await mgr.stop_stale([group("r1", "r2", "r3")])
    assert stopped == ["web: script svc::r3", "web: script svc::r1"]
    assert calls(tmp) == ["r3 stop", "r1 stop"]
    assert not running(tmp, "r1") and not running(tmp, "r3")
    await mgr.close()


async def test_a_changed_group_definition_replaces_the_old_resources(env):
    tmp, ctx = env
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    assert await mgr.start_group(group("r1", "r2")) is True
    assert await mgr.start_group(group("r1", "r3")) is True  # reload with a new definition
    assert calls(tmp) == ["r1 start", "r2 start", "r2 stop", "r1 stop", "r1 start", "r3 start"]
    await mgr.stop_group(group("r1", "r3"))
    await mgr.close()


async def test_vip_and_script_group_in_a_namespace(env, lab):  # noqa: F811
    need_root("ip")
    tmp, _ = env
    lan = lab.switch("lan")
    a = lab.host("a")
    a.connect(lan, "198.18.0.2/24")
    ctx = AgentContext(netns=a.netns, resource_dirs=(str(tmp / "resource.d"),))
    g = Group(name="vipgroup", preferred_node="a", retries=0,
              resources=(VipResource(address="198.18.0.100", garp_count=1),
                         ScriptResource(name="svc", args=("web",))))
    mgr = ResourceManager(ctx, retry_delay_ms=10)
    assert await mgr.start_group(g) is True
    assert a.has_address("198.18.0.100") and running(tmp, "web")
    res = mgr.snapshot()["vipgroup"]["resources"]
    assert res[0]["name"] == "vip 198.18.0.100" and res[0]["interface"] == "eth0"
    # re-announcing (split brain healed) sends the VIP's rounds again; the script has none
    vip_agent = mgr._runs["vipgroup"].agents[0]
    # the announcement of start is done
    await async_wait_until(lambda: vip_agent.garp.sent == 2, 5, 0.02, "the start announcement")
    before = vip_agent.garp.sent
    assert await mgr.reannounce("vipgroup") == 1
    assert vip_agent.garp.sent == before + 2  # garp_count 1: one request and one reply
    assert await mgr.stop_group(g) is True
    assert not a.has_address("198.18.0.100") and not running(tmp, "web")
    assert await mgr.reannounce("vipgroup") == 0  # not running here any more
    # a VIP left behind by a crash is removed by the start-up cleanup
    a.add_address("198.18.0.100/24", "eth0")
    assert await mgr.stop_stale([g]) == ["vipgroup: vip 198.18.0.100"]
    assert not a.has_address("198.18.0.100")
    await mgr.close()
    assert os.path.exists(tmp / "calls")
