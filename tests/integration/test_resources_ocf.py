"""The ocf agent with the installed resource-agents package (Dummy; IPaddr2 in a namespace) and
with small agents of our own in a temporary OCF_ROOT for the exit codes."""

from __future__ import annotations

import os

import pytest

from hadirector.config.model import OcfResource
from hadirector.resources.base import AgentContext, AgentError, agent_for
from hadirector.resources.ocf import instance_name
from hdtest import need_root

OCF_ROOT = "/usr/lib/ocf"
DUMMY = f"{OCF_ROOT}/resource.d/heartbeat/Dummy"
IPADDR2 = f"{OCF_ROOT}/resource.d/heartbeat/IPaddr2"


def need_agent(path):
    if not os.access(path, os.X_OK):
        pytest.skip(f"needs {path} (Debian package resource-agents)")


async def test_dummy_agent_start_monitor_stop(tmp_path):
    need_agent(DUMMY)
    state = tmp_path / "dummy.state"
    model = OcfResource(agent="Dummy", params={"state": str(state)})
    agent = agent_for(model, AgentContext())
    assert agent.name == "ocf heartbeat:Dummy"
    assert await agent.monitor() is False  # OCF_NOT_RUNNING (7)
    await agent.start()
    assert state.exists()
    assert await agent.monitor() is True
    await agent.start()  # OCF: starting a started resource succeeds
    await agent.stop()
    assert not state.exists()
    assert await agent.monitor() is False
    await agent.stop()  # and stopping a stopped one
    # the instance name is stable for the same parameters and differs for others
    assert instance_name(model) == instance_name(OcfResource(agent="Dummy", params={"state": str(state)}))
    assert instance_name(model) != instance_name(OcfResource(agent="Dummy", params={"state": "/x"}))


def test_missing_agent_is_a_clear_fatal_error(tmp_path):
    agent = agent_for(OcfResource(provider="nosuch", agent="Thing"), AgentContext(ocf_root=str(tmp_path)))
    with pytest.raises(AgentError) as err:
        agent.path()
    assert f"{tmp_path}/resource.d/nosuch/Thing" in str(err.value) and not err.value.transient


# An agent that answers each action with the exit code in OCF_RESKEY_<action>_rc and records the
# OCF environment it was given.
ECHO_AGENT = """#!/bin/sh
env | grep '^OCF_' | sort > "$OCF_RESKEY_envfile"
eval rc=\\${OCF_RESKEY_$1_rc:-0}
echo "did $1" >&2
exit $rc
"""


@pytest.fixture
def echo_root(tmp_path):
    d = tmp_path / "ocf" / "resource.d" / "test"
    d.mkdir(parents=True)
    (d / "Echo").write_text(ECHO_AGENT)
    (d / "Echo").chmod(0o755)
    return tmp_path


def echo_agent(root, **rcs):
    params = {"envfile": str(root / "env")} | {f"{k}_rc": str(v) for k, v in rcs.items()}
    return agent_for(OcfResource(provider="test", agent="Echo", params=params),
                     AgentContext(ocf_root=str(root / "ocf")))


async def test_ocf_environment(echo_root):
    agent = echo_agent(echo_root, start=0)
    await agent.start()
    env = dict(line.split("=", 1) for line in (echo_root / "env").read_text().splitlines())
    assert env["OCF_ROOT"] == str(echo_root / "ocf")
    assert env["OCF_RA_VERSION_MAJOR"] == "1" and env["OCF_RA_VERSION_MINOR"] == "0"
    assert env["OCF_RESOURCE_TYPE"] == "Echo" and env["OCF_RESOURCE_PROVIDER"] == "test"
    assert env["OCF_RESOURCE_INSTANCE"].startswith("Echo_")
    assert env["OCF_RESKEY_start_rc"] == "0"
    assert env["OCF_RESKEY_envfile"] == str(echo_root / "env")


@pytest.mark.parametrize("rc, result", [(0, True), (7, False), (8, True), (190, True)])
async def test_monitor_codes(echo_root, rc, result):
    assert await echo_agent(echo_root, monitor=rc).monitor() is result


@pytest.mark.parametrize("rc, words, transient", [
    (1, "generic error", True), (2, "invalid arguments", False), (5, "not installed", False),
    (6, "not configured", False), (9, "failed (promoted)", True)])
async def test_monitor_and_start_errors(echo_root, rc, words, transient):
    with pytest.raises(AgentError) as err:
        await echo_agent(echo_root, monitor=rc).monitor()
    assert f"monitor exited {rc} ({words}): did monitor" in str(err.value)
    assert err.value.transient is transient and err.value.code == rc
    with pytest.raises(AgentError) as err:
        await echo_agent(echo_root, start=rc).start()
    assert f"start exited {rc}" in str(err.value)


async def test_stop_accepts_not_running(echo_root):
    await echo_agent(echo_root, stop=7).stop()
    with pytest.raises(AgentError):
        await echo_agent(echo_root, stop=1).stop()


def test_bad_parameter_names_are_refused(echo_root):
    from hadirector.resources.ocf import ocf_environment
    with pytest.raises(AgentError) as err:
        ocf_environment(OcfResource(agent="Echo", params={"bad-name": "x"}), "/usr/lib/ocf")
    assert "bad-name" in str(err.value)


async def test_ipaddr2_in_a_namespace(lab):  # noqa: F811
    need_root("ip", "ping")
    need_agent(IPADDR2)
    lan = lab.switch("lan")
    a, obs = lab.host("a"), lab.host("obs")
    a.connect(lan, "198.18.0.2/24")
    obs.connect(lan, "198.18.0.10/24")
    model = OcfResource(agent="IPaddr2", params={"ip": "198.18.0.100", "cidr_netmask": "24", "nic": "eth0"})
    agent = agent_for(model, AgentContext(netns=a.netns))
    assert await agent.monitor() is False
    await agent.start()
    try:
        assert a.has_address("198.18.0.100")
        assert await agent.monitor() is True
        obs.run(["ping", "-c", "1", "-W", "2", "198.18.0.100"])
    finally:
        await agent.stop()
    assert not a.has_address("198.18.0.100")
    assert await agent.monitor() is False
